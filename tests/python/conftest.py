def pytest_addoption(parser):
    parser.addoption("--all-models", action="store_true", help="also run the model suite's slow entries")
