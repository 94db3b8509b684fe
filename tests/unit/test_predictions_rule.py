import pytest

from phaselib.predictions.rule import seed_tolerance, three_way


def test_seed_tolerance_is_twice_the_median_std_with_a_floor():
    # Across-seed std per point: 0, 1 and 2 (rows are seeds): the median is 1.
    table = [[0.0, 1.0, 2.0], [0.0, -1.0, -2.0]]
    std = 2 ** 0.5  # sample std of (1, -1)
    assert seed_tolerance(table, 0.05) == pytest.approx(2 * std)
    assert seed_tolerance([[1.0, 2.0], [1.0, 2.0]], 0.05) == 0.05


@pytest.mark.parametrize("table", [[[1.0, 2.0]], [1.0, 2.0], [[]]])
def test_seed_tolerance_names_the_shape_it_wants(table):
    with pytest.raises(ValueError, match=r"seeds >= 2"):
        seed_tolerance(table, 0.05)


def test_seed_tolerance_refuses_a_negative_floor():
    with pytest.raises(ValueError, match="min_tol"):
        seed_tolerance([[0.0], [1.0]], -0.1)


@pytest.mark.parametrize("strong, weak, verdict", [
    ([True, True, True], [True, True, True], "supported"),
    ([False, False, False], [False, False, False], "refuted"),
    ([True, False, True], [True, True, True], "partly"),
    ([False, False, False], [False, True, False], "partly"),
])
def test_three_way(strong, weak, verdict):
    assert three_way(strong, weak) == verdict


def test_three_way_needs_one_bool_per_seed():
    with pytest.raises(ValueError, match="one bool per seed"):
        three_way([True], [True, False])
    with pytest.raises(ValueError, match="one bool per seed"):
        three_way([], [])
