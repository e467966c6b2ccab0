"""A list that mirrors its membership into a field of each element.

A node's ``inputs`` lists tensors; every tensor in it lists the node in its
``outputs`` (and the other three directions likewise). Mutating either side
through the list methods keeps the other side consistent, which is what
graph-surgery scripts rely on (``tensor.outputs.clear()`` detaches consumers).
"""


class SynchronizedList(list):
    """List of graph objects; adding/removing one updates ``getattr(elem, field)``."""

    def __init__(self, owner, field, initial=None):
        super().__init__()
        self._owner = owner
        self._field = field
        if initial:
            self.extend(initial)

    # The mirror list is changed with list's own methods so it does not echo back.
    def _link(self, elem):
        list.append(getattr(elem, self._field), self._owner)

    def _unlink(self, elem):
        mirror = getattr(elem, self._field)
        for i, item in enumerate(mirror):
            if item is self._owner:
                list.__delitem__(mirror, i)
                return

    def append(self, elem):
        self._link(elem)
        super().append(elem)

    def extend(self, elems):
        elems = list(elems)
        for e in elems:
            self._link(e)
        super().extend(elems)

    def insert(self, index, elem):
        self._link(elem)
        super().insert(index, elem)

    def remove(self, elem):
        for i, item in enumerate(self):
            if item == elem:
                self._unlink(item)
                super().__delitem__(i)
                return
        raise ValueError("list.remove(x): x not in list")

    def pop(self, index=-1):
        elem = super().pop(index)
        self._unlink(elem)
        return elem

    def clear(self):
        for e in list(self):
            self._unlink(e)
        super().clear()

    def __delitem__(self, index):
        removed = self[index] if isinstance(index, slice) else [self[index]]
        for e in removed:
            self._unlink(e)
        super().__delitem__(index)

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            value = list(value)
            for e in self[index]:
                self._unlink(e)
            for e in value:
                self._link(e)
        else:
            self._unlink(self[index])
            self._link(value)
        super().__setitem__(index, value)

    def __iadd__(self, elems):
        self.extend(elems)
        return self

    def __copy__(self):
        return list(self)

    def copy(self):
        return list(self)

    def __reduce_ex__(self, protocol):
        return (list, (list(self),))


def set_links(owner, name, value):
    """``owner.inputs = value`` / ``owner.outputs = value`` for a Node or Tensor: the old list's elements are
    unlinked, the new ones linked back (a node's inputs hold tensors whose outputs hold the node, and the reverse)."""
    mirror = "outputs" if name == "inputs" else "inputs"
    old = owner.__dict__.get(name)
    if value is old:  # `node.inputs += [...]` assigns the same list back
        return
    if old is not None:
        old.clear()
    object.__setattr__(owner, name, SynchronizedList(owner, mirror, value))
