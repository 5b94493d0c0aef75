"""The README's commands and API example stay true."""

from __future__ import annotations

import re

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _api_example() -> str:
    marker = README.index("<!-- api-example")
    match = re.search(r"```python\n(.*?)```", README[marker:], re.S)
    assert match, "the README's API example block is missing"
    return match.group(1)


def test_readme_api_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_api_example(), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert (tmp_path / "student-api.onnx").is_file()
    assert (tmp_path / "runs" / "api-demo" / "lineage.json").is_file()
    assert namespace["probabilities"].shape == (4, len(namespace["lineage"].class_names))


def test_readme_names_the_ci_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    test_line = next(line for line in ci.splitlines() if "pytest" in line)
    assert test_line.strip() in README, f"README must show the test command CI runs: {test_line.strip()}"


def test_readme_tools_and_modules_exist():
    for path in re.findall(r"tools/[a-z_]+\.py", README):
        assert (REPO / path).is_file(), f"README mentions {path}, which does not exist"
    for module in set(re.findall(r"-m (experiments\.[a-z_0-9]+|rnn_jax\.[a-z_.]+)", README)):
        assert (REPO / (module.replace(".", "/") + ".py")).is_file() or (
            REPO / module.replace(".", "/") / "__main__.py").is_file(), f"README runs {module}, which is missing"
