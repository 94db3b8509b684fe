""".github/workflows: they cannot run here, so their structure is checked instead.

book.yml builds the book with `make book` and deploys it to GitHub Pages with the
official actions; test.yml runs `make test` and keeps the browser's screenshots.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = re.compile(r"^actions/[a-z-]+@v\d+$")  # GitHub's own actions, pinned to a major


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads a bare `on` key as the boolean True.
    on = workflow.get("on", workflow.get(True))
    return {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) else on


def steps(workflow: dict):
    for job in workflow["jobs"].values():
        yield from job["steps"]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):", text, re.M))


def make_calls(workflow: dict) -> list[str]:
    return [t for s in steps(workflow) for t in re.findall(r"\bmake\s+([\w-]+)", s.get("run", ""))]


@pytest.mark.parametrize("name", ["book.yml", "test.yml"])
def test_workflow_structure(name):
    workflow = load(name)
    assert workflow["name"] and triggers(workflow), f"{name}: needs a name and triggers"
    assert workflow["jobs"], f"{name}: no jobs"
    for job_name, job in workflow["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", f"{name}/{job_name}: runs-on"
        assert job["steps"], f"{name}/{job_name}: no steps"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: a step needs uses or run: {step}"
            if "uses" in step:
                assert ACTION.match(step["uses"]), f"{name}: unpinned or unofficial {step['uses']}"
    text = (WORKFLOWS / name).read_text()
    assert text.count("${{") == text.count("}}"), f"{name}: unbalanced ${{{{ }}}}"
    assert "\t" not in text, f"{name}: tabs in YAML"


@pytest.mark.parametrize("name", ["book.yml", "test.yml"])
def test_workflows_call_make_targets_that_exist(name):
    calls = make_calls(load(name))
    assert calls, f"{name} runs no make target"
    missing = set(calls) - make_targets()
    assert not missing, f"{name} calls make targets the Makefile lacks: {missing}"


def test_make_targets_parser_sees_the_makefile():
    """The helper above must be able to fail: it finds the real targets, not everything."""
    targets = make_targets()
    assert {"book", "test", "install"} <= targets and "deploy" not in targets


def test_book_workflow_builds_and_deploys_to_pages():
    workflow = load("book.yml")
    assert "main" in triggers(workflow)["push"]["branches"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write",
                                       "id-token": "write"}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert make_calls({"jobs": {"build": build}}) == ["book"]
    upload = [s for s in build["steps"]
              if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(upload) == 1 and upload[0]["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    deploy_step = deploy["steps"][-1]
    assert deploy_step["uses"].startswith("actions/deploy-pages@")
    assert deploy["environment"]["url"] == f"${{{{ steps.{deploy_step['id']}.outputs.page_url }}}}"


def test_test_workflow_runs_make_test_and_keeps_the_screenshots():
    from tests.book.test_browser import SCREENSHOTS

    workflow = load("test.yml")
    assert {"push", "pull_request"} <= set(triggers(workflow))
    assert make_calls(workflow) == ["test"]
    job = workflow["jobs"]["test"]
    assert job["env"]["BOOK_BROWSER_REQUIRED"], "CI must not skip the browser tests"
    upload = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(upload) == 1
    assert upload[0]["if"] == "always()", "screenshots are wanted most when a test failed"
    assert upload[0]["with"]["path"] == SCREENSHOTS.relative_to(ROOT).as_posix()
