"""CoT teachers: reply parsing, the expert teacher, an OpenAI-compatible teacher behind a real HTTP server
on 127.0.0.1, and the project's tiny random model as a teacher (whose replies the filter drops)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.images import decode_data_url
from agent.teachers import (ExpertRationaleTeacher, LocalModelTeacher, NativeSyntax, OpenAITeacher,
                            OpenAITeacherConfig, make_teacher, parse_teacher_reply, split_rationale)
from envs.actions import Click, Done, Hotkey, TypeText
from tests.trajectories.test_cot_reflect import SIZE, record
from trajectories.cot import CoTConfig, TeacherError, TeacherFormatError, synthesize_run
from trajectories.reader import read_episode
from trajectories.reflect import Complexity

RATIONALE = 'The instruction asks for the "okay" button. The page shows <button> "okay" at (40, 30), so I click there.'


def _run(path: Path) -> Path:
    record(path, "ep", [(0, Click(40, 30), {"thought": RATIONALE}), (1, TypeText("hi"), {}), (2, Done(), {})],
           final=3, privileged=True)
    return path


# -- a scripted OpenAI-compatible server ------------------------------------------------------
Reply = Callable[[dict[str, Any]], str]


def copy_recorded(request: dict[str, Any]) -> str:
    """A well-behaved teacher: describe, reason, and end with the recorded action it was given."""
    text = request["messages"][-1]["content"]
    if isinstance(text, str):  # the summary request
        return "The agent clicked the button, typed and finished; it succeeded."
    prompt = text[0]["text"]
    action = re.search(r"^The recorded action is: (.+)$", prompt, re.MULTILINE).group(1)  # type: ignore[union-attr]
    return f"<think>scratch</think>Observation: a form.\nThought: The field is empty so I act.\nAction: {action}"


class Server:
    """A real chat-completions server on 127.0.0.1 answering with ``reply(request)``."""

    def __init__(self, reply: Reply) -> None:
        requests: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                requests.append(body)
                data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": reply(body)}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.requests = requests
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture()
def served() -> Iterator[Server]:
    with Server(copy_recorded) as server:
        yield server


# -- parsing ------------------------------------------------------------------------------------
def test_parse_teacher_reply_reads_sections_and_drops_thinking() -> None:
    reply = parse_teacher_reply("<think>hm</think>## Observation: a page\n**Thought**: go\non\nAction: click(x=1, y=2)", (9, 9))
    assert (reply.observation, reply.thought, reply.action_text, reply.image_size) == ("a page", "go\non", "click(x=1, y=2)", (9, 9))
    with pytest.raises(TeacherFormatError, match="observation, action"):
        parse_teacher_reply("Thought: only a thought")
    with pytest.raises(TeacherFormatError):
        parse_teacher_reply("")


def test_native_syntax_round_trips_and_scales_from_the_image_the_teacher_saw() -> None:
    syntax = NativeSyntax()
    assert syntax.format(Click(40, 30), SIZE) == "click(x=40, y=30)"
    assert syntax.parse("click(x=40, y=30)", SIZE, SIZE) == Click(40, 30)
    assert syntax.parse("click(x=20, y=15)", (96, 64), (48, 32)) == Click(40, 30)  # teacher saw half size
    assert syntax.parse('hotkey(keys=["ctrl", "a"])', SIZE, SIZE) == Hotkey(("ctrl", "a"))
    with pytest.raises(ValueError, match="exactly one action"):
        syntax.parse("click(x=1, y=1)\nclick(x=2, y=2)", SIZE, SIZE)
    with pytest.raises(ValueError):
        syntax.parse("__import__('os').system('true')", SIZE, SIZE)


def test_split_rationale_separates_facts_goals_and_intents() -> None:
    facts, goals, intents = split_rationale(RATIONALE)
    assert goals == ['The instruction asks for the "okay" button']
    assert facts == ['The page shows <button> "okay" at (40, 30)'] and intents == ["I click there"]
    facts, goals, intents = split_rationale("The text field should contain 'Bo' but holds ''; I focus it first.")
    assert facts == ["The text field should contain 'Bo' but holds ''"] and intents == ["I focus it first"]


# -- the expert teacher -------------------------------------------------------------------------
def test_expert_teacher_is_deterministic_varies_by_seed_and_grows_with_complexity(tmp_path: Path) -> None:
    run = _run(tmp_path / "in")
    texts = {}
    for seed in (0, 0, 1, 2, 3):
        out = tmp_path / f"out{seed}-{len(texts)}"
        synthesize_run(run, out, ExpertRationaleTeacher(), NativeSyntax(), CoTConfig(seed=seed, progress=False))
        texts.setdefault(seed, []).append([s.extra["cot"]["l3"] for s in read_episode(out / "episodes" / "ep").steps])
    assert texts[0][0] == texts[0][1]                             # same seed, same text
    assert len({json.dumps(t[0]) for t in texts.values()}) > 1      # other seeds pick other phrasings
    teacher = ExpertRationaleTeacher()
    episode = read_episode(run / "episodes" / "ep")
    from trajectories.cot import _EpisodeJob  # the request the synthesis builds

    job = _EpisodeJob(episode, teacher, NativeSyntax(), CoTConfig())
    request = job.request(episode.steps[0], Click(40, 30), SIZE)
    lengths = {}
    for score in (0.5, 2.5, 4.5):
        lengths[score] = len(teacher.think(_with(request, Complexity(score))).thought.split())
    assert lengths[0.5] < lengths[2.5] < lengths[4.5]


def _with(request: Any, complexity: Complexity) -> Any:
    from dataclasses import replace

    return replace(request, complexity=complexity)


# -- a model teacher over HTTP --------------------------------------------------------------------
def test_openai_teacher_through_a_real_server_is_consistent(tmp_path: Path, served: Server) -> None:
    teacher = make_teacher(served.base_url, model_name="teacher-7b")
    assert isinstance(teacher, OpenAITeacher) and teacher.name == "openai:teacher-7b"
    report = synthesize_run(_run(tmp_path / "in"), tmp_path / "out", teacher, NativeSyntax(), CoTConfig(progress=False))
    assert (report.steps, report.kept, report.dropped) == (3, 3, 0)
    step = read_episode(tmp_path / "out" / "episodes" / "ep").steps[0]
    cot = step.extra["cot"]
    assert cot["observation"] == "a form." and cot["l1"] == "click(x=40, y=30)" and "scratch" in cot["raw"]
    first = served.requests[0]
    assert first["model"] == "teacher-7b" and first["messages"][0]["role"] == "system"
    parts = first["messages"][1]["content"]
    images = [decode_data_url(p["image_url"]["url"]) for p in parts if p["type"] == "image_url"]
    assert len(images) == 2 and images[0].shape == (SIZE[1], SIZE[0], 3)  # before and after, at native size
    assert "The recorded action is: click(x=40, y=30)" in parts[0]["text"] and RATIONALE in parts[0]["text"]
    assert len(served.requests) == 4  # three steps and the summary
    end = read_episode(tmp_path / "out" / "episodes" / "ep").end
    assert end is not None and end.info["summary"].startswith("The agent clicked")


def test_openai_teacher_scaled_images_and_wrong_answers(tmp_path: Path) -> None:
    def lazy(request: dict[str, Any]) -> str:  # always clicks the top-left corner, or writes no sections
        content = request["messages"][-1]["content"]
        return "no idea" if "recorded action is: type(" in str(content) else "Observation: x\nThought: y\nAction: click(x=0, y=0)"

    from agent.images import ResizeRule

    with Server(lazy) as server:
        teacher = OpenAITeacher(OpenAITeacherConfig(server.base_url, "m", resize=ResizeRule("max_side", max_side=48),
                                                    send_after=False))
        report = synthesize_run(_run(tmp_path / "in"), tmp_path / "out", teacher, NativeSyntax(), CoTConfig(progress=False))
        images = [p for p in server.requests[0]["messages"][1]["content"] if p["type"] == "image_url"]
    assert len(images) == 1 and decode_data_url(images[0]["image_url"]["url"]).shape == (32, 48, 3)
    assert report.kept == 0 and report.drop_reasons == {"different action": 2, "teacher format": 1}


def test_unreachable_teacher_stops_the_run_and_leaves_no_half_episode(tmp_path: Path) -> None:
    with Server(copy_recorded) as server:
        url = server.base_url
    teacher = OpenAITeacher(OpenAITeacherConfig(url, "m", retries=0, timeout_s=5))
    with pytest.raises(TeacherError, match="no reply"):
        synthesize_run(_run(tmp_path / "in"), tmp_path / "out", teacher, NativeSyntax(), CoTConfig(progress=False))
    assert not (tmp_path / "out" / "episodes" / "ep").exists()


def test_make_teacher_specs(tmp_path: Path) -> None:
    assert isinstance(make_teacher("expert"), ExpertRationaleTeacher)
    with pytest.raises(ValueError, match="unknown teacher"):
        make_teacher("gpt")
    with pytest.raises(ValueError, match="no config.json"):
        make_teacher(str(tmp_path))


# -- the project's tiny random model ----------------------------------------------------------------
@pytest.mark.slow
def test_tiny_random_model_teacher_is_dropped_by_the_filter(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from model.config import tiny
    from model.modeling import build_model
    from model.processing import Processor

    model_dir = tmp_path / "tiny-pp"
    torch.manual_seed(0)
    build_model(tiny()).save_pretrained(str(model_dir))
    Processor.default().save_pretrained(model_dir)
    teacher = make_teacher(str(model_dir), max_tokens=12)
    assert isinstance(teacher, LocalModelTeacher) and teacher.name == "local:tiny-pp"
    report = synthesize_run(_run(tmp_path / "in"), tmp_path / "out", teacher, NativeSyntax(), CoTConfig(progress=False))
    assert report.steps == 3 and report.kept == 0 and report.train == 0
    assert set(report.drop_reasons) <= {"teacher format", "unparseable action", "different action"}
    episode = read_episode(tmp_path / "out" / "episodes" / "ep")
    for step in episode.steps:
        assert step.extra["cot"]["consistent"] is False and "long_cot" not in step.extra
    assert episode.steps[0].thought == RATIONALE  # the recorded thought stays
    assert episode.end is not None and isinstance(episode.end.info["summary"], str)
