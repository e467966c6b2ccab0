"""Exports the suite's sequence models with Debian's torch, random seeded weights, into out/models/torch/:

  seq_lstm_op{13,17}.onnx  2-layer bidirectional nn.LSTM (batch_first) + a Linear head, input x [1, 40, 64]
  seq_gru_op{13,17}.onnx   nn.GRU (batch_first) + a Linear head, input x [1, 40, 64]

The shape of an OCR recognizer's sequence head (features per column in, per-column class scores out); fixed
shapes. Files that exist are kept. Usage: export_sequence.py [--out DIR]
"""
import argparse
import os

import torch
from torch import nn

from export_torchvision import onnx_export  # the TorchScript exporter on torch 1.13 and >= 2.9 alike

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPE = (1, 40, 64)  # batch, time steps, features


class SequenceHead(nn.Module):
    def __init__(self, rnn, classes=37):
        super().__init__()
        self.rnn = rnn
        width = rnn.hidden_size * (2 if rnn.bidirectional else 1)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y)


def models():
    torch.manual_seed(20261130)
    yield "seq_lstm", SequenceHead(nn.LSTM(64, 48, num_layers=2, bidirectional=True, batch_first=True))
    yield "seq_gru", SequenceHead(nn.GRU(64, 96, batch_first=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "models", "torch"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, model in models():
        model.eval()
        x = torch.randn(*SHAPE)
        for opset in (13, 17):
            path = os.path.join(args.out, f"{name}_op{opset}.onnx")
            if os.path.exists(path):
                continue
            onnx_export(model, (x,), path, input_names=["x"], output_names=["scores"], opset_version=opset)
            print(f"export_sequence: {path}")


if __name__ == "__main__":
    main()
