import pytest

from tests.support import REPO, read_records


@pytest.fixture(scope="session")
def scenario_run(tmp_path_factory):
    """The shock scenario run once for every test that inspects it."""
    from framework.runtime.run import run_session
    from framework.spec.session import load_session

    out = tmp_path_factory.mktemp("scenario")
    result = run_session(load_session(REPO / "configs" / "scenario-shock.yaml"), out)
    return out, result.summary, read_records(out)
