"""The shared bisection: the last index whose growing value fits a limit."""

from search.study.bisection import last_within


def test_last_within_finds_the_boundary_and_the_edges():
    values = [1.0, 2.0, 3.0, 5.0, 8.0, 13.0]
    calls = []

    def value(i):
        calls.append(i)
        return values[i]

    assert last_within(len(values), value, 5.0) == 3 and len(calls) <= 3
    assert last_within(len(values), values.__getitem__, 0.5) == -1
    assert last_within(len(values), values.__getitem__, 100.0) == len(values) - 1
    assert last_within(0, values.__getitem__, 1.0) == -1
