"""cleanup() and toposort(): dead-node removal and a deterministic topological order."""

from .errors import OnnxGraphSurgeonException


def cleanup_graph(graph, remove_unused_node_outputs, recurse_subgraphs, remove_unused_graph_inputs, recurse_functions):
    if recurse_functions:
        for func in graph.functions:
            func.cleanup(remove_unused_node_outputs=remove_unused_node_outputs, recurse_subgraphs=recurse_subgraphs)
    if recurse_subgraphs:
        for sub in graph.subgraphs():
            # Subgraph inputs are positional (Loop/Scan bodies), so they are never removed.
            sub.cleanup(remove_unused_node_outputs, True, False, False)

    members = {id(n) for n in graph.nodes}
    # A graph input has no producer inside the graph; consumers of outputs outside it are stale.
    for t in graph.inputs:
        t.inputs.clear()
    for t in graph.outputs:
        for consumer in [n for n in t.outputs if id(n) not in members]:
            t.outputs.remove(consumer)

    used = _nodes_reaching(graph, graph.outputs)
    kept = []
    for node in graph.nodes:
        if id(node) in used:
            kept.append(node)
        else:
            node.inputs.clear()
            node.outputs.clear()
    graph.nodes = kept

    outputs = {t.name for t in graph.outputs}
    if remove_unused_node_outputs:
        implicit = _implicitly_used_names(graph)
        for node in graph.nodes:
            for t in list(node.outputs):
                if not t.is_empty() and not t.outputs and t.name not in outputs and t.name not in implicit:
                    node.outputs.remove(t)
    if remove_unused_graph_inputs:
        implicit = _implicitly_used_names(graph)
        graph.inputs = [t for t in graph.inputs if t.outputs or t.name in outputs or t.name in implicit]
    return graph


def _implicitly_used_names(graph):
    """Names of outer tensors that nodes' subgraphs read without listing them as inputs."""
    names = set()
    for node in graph.nodes:
        for sub in node.subgraphs():
            names.update(sub._foreign_tensors().keys())
    return names


def _nodes_reaching(graph, tensors):
    """ids of the graph's nodes that some tensor in ``tensors`` depends on."""
    members = {id(n) for n in graph.nodes}
    used = set()
    stack = list(tensors)
    seen_tensors = set()
    while stack:
        t = stack.pop()
        if id(t) in seen_tensors:
            continue
        seen_tensors.add(id(t))
        for producer in t.inputs:
            if id(producer) in members and id(producer) not in used:
                used.add(id(producer))
                stack.extend(graph._node_uses(producer))
    return used


def toposort_nodes(nodes, uses_of):
    """Sort by depth (longest path from a graph input), ties in depth-first completion order.

    The depth-first walk visits each node's inputs in order and each input's producers in
    order; nodes are then stably sorted by depth, which yields the order onnx_graphsurgeon
    produces for the same graph.
    """
    members = {id(n): n for n in nodes}
    level = {}
    finished = []
    visiting = set()
    for root in nodes:
        if id(root) in level:
            continue
        stack = [(root, iter(_producers(root, uses_of, members)))]
        visiting.add(id(root))
        while stack:
            node, pending = stack[-1]
            advanced = False
            for producer in pending:
                if id(producer) in level:
                    continue
                if id(producer) in visiting:
                    raise OnnxGraphSurgeonException("Cycle detected in graph! Are there tensors with duplicate names in the graph?")
                visiting.add(id(producer))
                stack.append((producer, iter(_producers(producer, uses_of, members))))
                advanced = True
                break
            if advanced:
                continue
            stack.pop()
            visiting.discard(id(node))
            deps = [level[id(p)] for p in _producers(node, uses_of, members)]
            level[id(node)] = max(deps) + 1 if deps else 0
            finished.append(node)
    order = {id(n): i for i, n in enumerate(finished)}
    return sorted(nodes, key=lambda n: (level[id(n)], order[id(n)]))


def _producers(node, uses_of, members):
    for t in uses_of(node):
        for producer in t.inputs:
            if id(producer) in members:
                yield producer


def toposort_functions(functions):
    """Order local functions so that a function comes after every function it calls."""
    by_key = {(f.domain, f.name): f for f in functions}

    def calls(func):
        found = []
        for node in func.nodes:
            callee = by_key.get((node.domain, node.op))
            if callee is not None and callee is not func:
                found.append(callee)
        return found

    ordered, state = [], {}
    for root in functions:
        stack = [(root, iter(calls(root)))]
        if id(root) in state:
            continue
        state[id(root)] = "visiting"
        while stack:
            func, pending = stack[-1]
            nxt = next((c for c in pending if state.get(id(c)) != "done"), None)
            if nxt is not None:
                if state.get(id(nxt)) == "visiting":
                    raise OnnxGraphSurgeonException("Cycle detected in graph! Local functions call each other recursively.")
                state[id(nxt)] = "visiting"
                stack.append((nxt, iter(calls(nxt))))
                continue
            stack.pop()
            state[id(func)] = "done"
            ordered.append(func)
    return ordered
