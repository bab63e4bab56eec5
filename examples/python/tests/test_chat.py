"""Chat templates from Python: the rendering equals transformers' recorded outputs
(tests/data/chat_templates), the model's own template and special tokens are used, and
``Model.chat`` answers a conversation with the tokens that template gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import moestream

from conftest import DATA

TEMPLATES = DATA / "chat_templates"
CASES = json.loads((TEMPLATES / "cases.json").read_text(encoding="utf-8"))
EXPECTED = json.loads((TEMPLATES / "expected.json").read_text(encoding="utf-8"))
TEMPLATE_INFO = {t["name"]: t for t in json.loads((TEMPLATES / "templates.json").read_text(encoding="utf-8"))}


def _cases() -> list[tuple[str, dict[str, Any]]]:
    return [(template, case) for template in sorted(EXPECTED["templates"]) for case in CASES["cases"]
            if case["name"] in EXPECTED["templates"][template]]


@pytest.mark.parametrize("template,case", _cases(), ids=lambda v: v if isinstance(v, str) else v["name"])
def test_renders_as_transformers_did(template: str, case: dict[str, Any]) -> None:
    info = TEMPLATE_INFO[template]
    text = (TEMPLATES / info["file"]).read_text(encoding="utf-8")
    variables = dict(info.get("variables", {}))
    variables.update(case.get("variables", {}))
    tools = CASES["tools"] if case.get("with_tools") else None
    expected = EXPECTED["templates"][template][case["name"]]
    render = lambda: moestream.apply_chat_template(  # noqa: E731
        text, case["messages"], case.get("add_generation_prompt", True), tools, now_unix=EXPECTED["now"], **variables)
    if "output" in expected:
        assert render() == expected["output"]
    else:  # the template itself refuses the conversation (raise_exception)
        with pytest.raises(moestream.MoestreamError):
            render()


def test_model_template_and_special_tokens(tiny_model: moestream.Model) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    template = tiny_model.chat_template()
    assert "<|im_start|>" in template
    rendered = tiny_model.apply_chat_template(messages)
    assert rendered == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    # The same text through the template's text and the C call that takes it.
    assert moestream.apply_chat_template(template, messages) == rendered
    assert tiny_model.apply_chat_template(messages, add_generation_prompt=False) == rendered[:-len("<|im_start|>assistant\n")]
    # A variable the template reads: eos_token comes from the model unless overridden.
    uses_eos = "{{ eos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"
    assert moestream.apply_chat_template(uses_eos, messages, eos_token="[end]") == "[end]Be brief.Hi"


def test_bad_messages_are_type_errors(tiny_model: moestream.Model) -> None:
    with pytest.raises(TypeError):
        tiny_model.apply_chat_template("Hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tiny_model.apply_chat_template([{"content": "no role"}])
    with pytest.raises(TypeError):
        tiny_model.apply_chat_template([{"role": "user", "content": "x", "extra": object()}])


def test_template_errors_name_the_line() -> None:
    with pytest.raises(moestream.InvalidArgumentError, match="no user"):
        moestream.apply_chat_template("{{ raise_exception('no user') }}", [{"role": "user", "content": "x"}])
    with pytest.raises(moestream.BadFormatError):
        moestream.apply_chat_template("{% for %}", [])


def test_model_without_template(tmp_path: Path, tiny_path: Path) -> None:
    for file in tiny_path.iterdir():
        if file.name != "tokenizer_config.json":
            (tmp_path / file.name).symlink_to(file)
    config = json.loads((tiny_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    del config["chat_template"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    with moestream.Model(tmp_path, backend="cpu", n_threads=1) as model:
        with pytest.raises(moestream.UnsupportedError):
            model.chat_template()
        with pytest.raises(moestream.UnsupportedError):
            list(model.chat([{"role": "user", "content": "Hi"}], max_tokens=2))


def test_chat_answers_with_the_templates_tokens(tiny_model: moestream.Model) -> None:
    messages = [{"role": "user", "content": "Hello there"}]
    answer = tiny_model.chat(messages, max_tokens=6, temperature=0, ignore_eos=True)
    pieces = list(answer)
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert len(answer.tokens) == 6
    assert answer.stop_reason == moestream.StopReason.MAX_TOKENS
    # Greedy: the same as generating from the rendered conversation's tokens.
    prompt = tiny_model.tokenize(tiny_model.apply_chat_template(messages))
    direct = tiny_model.generate(prompt, max_tokens=6, temperature=0, ignore_eos=True)
    assert "".join(direct) == "".join(pieces)
    assert direct.tokens == answer.tokens
    # Template variables reach the template; an unknown generation option is refused.
    assert list(tiny_model.chat(messages, template_variables={"enable_thinking": False}, max_tokens=1, temperature=0))
    with pytest.raises(TypeError):
        tiny_model.chat(messages, not_an_option=1)
