"""Build the tokenizer corpus and train pixelpilot's byte-level BPE tokenizer (deterministic).

    .venv/bin/python scripts/train_tokenizer.py --write-corpus   # regenerate model/data/corpus/*
    .venv/bin/python scripts/train_tokenizer.py                  # train model/data/tokenizer.json

The corpus is written by hand (``prose.txt``) plus text generated here from a seeded RNG:
GUI/agent vocabulary (actions in the project's JSON syntax, pyautogui calls, key names,
coordinates), MiniWoB-style instructions, code-ish snippets and chat turns. Training itself
lives in ``model.processing.tokenizer.train_tokenizer``; this script only drives it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.processing.tokenizer import (  # noqa: E402
    CORPUS_DIR,
    DEFAULT_TOKENIZER_FILE,
    DEFAULT_VOCAB_SIZE,
    train_tokenizer,
)

SEED = 1234

WIDGETS = ["button", "link", "checkbox", "radio button", "text field", "input box", "drop-down menu",
           "tab", "icon", "menu item", "slider", "toggle", "search bar", "text area", "scroll bar",
           "date picker", "list item", "row", "column header", "dialog", "toolbar button", "label"]
LABELS = ["Submit", "OK", "Cancel", "Save", "Save As", "Open", "Close", "Next", "Previous", "Back",
          "Search", "Login", "Sign in", "Sign out", "Apply", "Delete", "Remove", "Add", "Edit",
          "Settings", "Preferences", "Help", "File", "View", "Insert", "Format", "Tools", "Reply",
          "Forward", "Send", "Download", "Upload", "Refresh", "Continue", "Finish", "Yes", "No",
          "Share", "Print", "Export", "Import", "Copy", "Paste", "Undo", "Redo", "Bold", "Italic"]
APPS = ["Firefox", "Chromium", "Chrome", "Thunderbird", "LibreOffice Writer", "LibreOffice Calc",
        "LibreOffice Impress", "GIMP", "VS Code", "Terminal", "xterm", "Files", "Nautilus",
        "Settings", "Text Editor", "gedit", "VLC", "Calculator", "Calendar", "Task Manager"]
WINDOW_TITLES = ["Untitled Document 1", "report.docx - LibreOffice Writer", "budget.xlsx",
                 "Inbox - Thunderbird", "New Tab - Chromium", "Terminal", "Save As", "Open File",
                 "Print", "Preferences", "About", "Downloads", "Settings - Display", "Find and Replace"]
WORDS = ["apple", "river", "orange", "window", "garden", "planet", "yellow", "music", "silver",
         "forest", "pencil", "market", "bridge", "coffee", "summer", "winter", "stone", "cloud",
         "tiger", "rocket", "paper", "violet", "harbor", "lemon", "candle", "mirror", "island",
         "ticket", "guitar", "camera", "marble", "feather", "thunder", "meadow", "copper", "velvet"]
NAMES = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
         "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoe"]
COLORS = ["red", "green", "blue", "yellow", "black", "white", "purple", "orange", "pink", "gray"]
SHAPES = ["circle", "square", "triangle", "rectangle", "star", "diamond"]
KEYS = ["enter", "tab", "escape", "backspace", "delete", "space", "up", "down", "left", "right",
        "home", "end", "pageup", "pagedown", "f1", "f2", "f5", "f11", "f12", "insert", "capslock"]
HOTKEYS = [["ctrl", "c"], ["ctrl", "v"], ["ctrl", "x"], ["ctrl", "z"], ["ctrl", "y"], ["ctrl", "s"],
           ["ctrl", "a"], ["ctrl", "f"], ["ctrl", "t"], ["ctrl", "w"], ["ctrl", "shift", "t"],
           ["alt", "tab"], ["alt", "f4"], ["ctrl", "alt", "t"], ["shift", "tab"], ["ctrl", "l"],
           ["ctrl", "shift", "n"], ["win", "d"], ["ctrl", "p"], ["ctrl", "h"], ["ctrl", "enter"]]
VERBS_CLICK = [("Click", "Clicking"), ("Press", "Pressing"), ("Select", "Selecting"),
               ("Choose", "Choosing"), ("Hit", "Hitting"), ("Tap", "Tapping"), ("Pick", "Picking")]
THOUGHT_OPENERS = ["I can see", "The screenshot shows", "The screen now shows", "There is",
                   "It looks like", "I notice", "The window displays", "On the left there is",
                   "At the top of the page there is", "Below the header there is"]

# Broad English vocabulary for generated sentences (so the BPE sees more than GUI words).
NOUNS = """
account address afternoon airport animal answer apartment application argument article artist
autumn baby background balance bank battery beach bedroom bicycle bird birthday blanket boat
body book bottle box brain branch bread breakfast brother budget building business cabinet
calendar captain car card carpet castle cat ceiling chair chapter character chart cheese child
church city class classroom client clock coast coat colleague committee community company
computer concert condition connection contract conversation corner country cousin crowd cup
customer dance daughter decision department desk detail device diagram dinner direction
director distance doctor document dog door drawer dream driver engine engineer evening event
example experience experiment factory family farmer father feature festival field figure film
finger fire flight floor flower folder friend fruit function future game garage gate gift
government grandmother group guest hallway handle heart highway history holiday horse hospital
hour house idea image industry island journey judge kitchen knife lake language laptop lawyer
leader lesson letter library light line list lunch machine manager map meeting memory message
method minute model moment money month morning mother mountain mouse movie museum nation
neighbour network newspaper night note notebook number ocean office officer orchestra owner
package page painting paragraph parent party passenger password path pattern payment pencil
people person phone photograph piano picture place plan plant player pocket poem policy
population position pot power president price printer problem process product professor
program project promise question radio reason recipe record region report request research
restaurant result road room rule salary sandwich scene schedule school science screen season
secret server shelf shop shoulder signal sister song sound source space speaker station story
street student subject summer supermarket surface system table teacher team telephone theory
thing ticket town tradition train tree truck umbrella university valley vehicle village
visitor voice wall wallet weather website week weekend window wire woman worker writer year
""".split()
VERBS = """
accept add admire agree allow answer appear arrive ask attach avoid bake borrow build call
carry change check clean climb close collect compare complete confirm connect consider contain
copy count cover create decide deliver describe design destroy develop discover discuss divide
download drag drop edit enjoy enter explain explore fill find finish fix follow forget gather
guess handle help hide hold hope identify ignore imagine improve include install invite join
jump keep kick knock laugh learn leave lift listen load locate lock look manage measure mention
miss move need notice obtain offer open order organise paint pass pause plan play point prefer
prepare present print produce protect provide publish pull push reach read receive recognise
record reduce refresh refuse remember remove repair repeat replace reply report request rescue
restart return review save scroll search select send share show sign sort start stay stop
study submit suggest support switch talk teach test thank touch travel try turn type update
upload use visit wait walk want wash watch wonder work worry write
""".split()
ADJECTIVES = """
active ancient angry anxious available bare beautiful bitter blank bold brave bright broken
busy calm careful careless cheap clean clear clever cold comfortable common complex correct
crowded curious current dangerous dark deep default delicate different difficult dirty distant
early easy empty enormous entire equal exact expensive familiar famous fast final flat foreign
formal fresh friendly full gentle golden grateful greedy green grey happy hard healthy heavy
helpful hidden honest huge hungry important invisible kind large late lazy light little local
lonely long loud lucky main modern narrow natural nervous new noisy normal obvious old open
ordinary patient perfect plain polite popular possible powerful private proud public quick
quiet rapid rare ready recent regular remote rich rough round sad safe secure selected sharp
short silent simple slow small smooth soft solid special strange strict strong sudden sweet
tall thick thin tidy tiny tired tough transparent typical unusual useful valid visible warm
weak wealthy wide wild wise wonderful wooden young
""".split()
ADVERBS = """
quickly slowly carefully quietly suddenly finally usually often rarely never always again
already almost certainly clearly easily exactly gently happily immediately nearly probably
recently simply soon together twice
""".split()
TIMES = ["yesterday", "this morning", "last week", "every day", "on Monday", "in the evening",
         "before lunch", "after the meeting", "at midnight", "during the summer", "next year",
         "for a few minutes", "since January", "at 9:30", "around noon"]


_IRREGULAR = {  # verb -> (past, -ing)
    "read": ("read", "reading"), "build": ("built", "building"), "find": ("found", "finding"),
    "forget": ("forgot", "forgetting"), "hold": ("held", "holding"), "hide": ("hid", "hiding"),
    "keep": ("kept", "keeping"), "leave": ("left", "leaving"), "send": ("sent", "sending"),
    "stop": ("stopped", "stopping"), "drop": ("dropped", "dropping"), "plan": ("planned", "planning"),
    "drag": ("dragged", "dragging"), "teach": ("taught", "teaching"), "write": ("wrote", "writing"),
    "swim": ("swam", "swimming"), "begin": ("began", "beginning"), "pay": ("paid", "paying"),
    "travel": ("travelled", "travelling"), "knock": ("knocked", "knocking"),
}


def _ing(verb: str) -> str:
    if verb in _IRREGULAR:
        return _IRREGULAR[verb][1]
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    return verb + "ing"


def _past(verb: str) -> str:
    if verb in _IRREGULAR:
        return _IRREGULAR[verb][0]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def gen_sentences(rng: random.Random) -> str:
    """A short paragraph of generated (grammatical, meaning-light) English sentences."""
    def np(plural_ok: bool = True) -> str:
        noun = rng.choice(NOUNS)
        if plural_ok and rng.random() < 0.3:
            return f"{rng.choice(['the', 'some', 'many', 'two', 'several', 'those'])} {rng.choice(ADJECTIVES)} {_plural(noun)}"
        return f"{rng.choice(['the', 'a', 'this', 'that', 'every', 'her', 'his', 'our', 'their'])} {rng.choice(ADJECTIVES)} {noun}"

    def sentence() -> str:
        v = rng.choice(VERBS)
        form = rng.randrange(6)
        if form == 0:
            s = f"{np()} {_past(v)} {np()} {rng.choice(TIMES)}"
        elif form == 1:
            s = f"{rng.choice(NAMES)} was {_ing(v)} {np()} {rng.choice(ADVERBS)}"
        elif form == 2:
            s = f"why did {np()} {v} {np()}"
        elif form == 3:
            s = f"if you {v} {np()}, {np()} will be {rng.choice(ADJECTIVES)}"
        elif form == 4:
            s = f"{rng.choice(['we', 'they', 'I', 'you'])} should {rng.choice(ADVERBS)} {v} {np()} near {np()}"
        else:
            s = f"{np(False)} is {rng.choice(['far', 'much', 'a little'])} {rng.choice(['more', 'less'])} {rng.choice(ADJECTIVES)} than {np()}"
        end = "?" if form == 2 else rng.choice([".", ".", ".", "!"])
        return s[0].upper() + s[1:] + end

    return " ".join(sentence() for _ in range(rng.randint(3, 6)))


def _xy(rng: random.Random) -> tuple[int, int]:
    w, h = rng.choice([(1920, 1080), (1280, 800), (1366, 768), (160, 210), (2560, 1440), (1024, 768)])
    return rng.randrange(w), rng.randrange(h)


def _word_text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _action(rng: random.Random) -> dict:
    """One action in the project's JSON syntax (envs.actions.action_to_json)."""
    x, y = _xy(rng)
    kind = rng.choice(["click", "click", "click", "move", "drag", "scroll", "type", "hotkey",
                       "wait", "done", "fail", "mouse_down", "mouse_up"])
    if kind == "click":
        return {"kind": "click", "x": x, "y": y, "button": rng.choice(["left", "left", "right", "middle"]),
                "count": rng.choice([1, 1, 1, 2, 3])}
    if kind in ("move", "mouse_down", "mouse_up"):
        return {"kind": kind, "x": x, "y": y}
    if kind == "drag":
        x2, y2 = _xy(rng)
        return {"kind": "drag", "x1": x, "y1": y, "x2": x2, "y2": y2, "button": "left"}
    if kind == "scroll":
        return {"kind": "scroll", "x": x, "y": y, "dx": 0, "dy": rng.choice([-10, -5, -3, 3, 5, 10])}
    if kind == "type":
        return {"kind": "type", "text": rng.choice([_word_text(rng, rng.randint(1, 4)), rng.choice(NAMES),
                                                    f"{rng.choice(NAMES).lower()}@example.com"])}
    if kind == "hotkey":
        return {"kind": "hotkey", "keys": rng.choice(HOTKEYS + [[k] for k in KEYS])}
    if kind == "wait":
        return {"kind": "wait", "seconds": rng.choice([0.5, 1.0, 2.0, 3.0])}
    if kind == "done":
        return {"kind": "done", "answer": rng.choice(["", "The file has been saved.", str(rng.randint(0, 999))])}
    return {"kind": "fail", "reason": rng.choice(["The requested file does not exist.",
                                                  "The website requires a password that was not given."])}


def _pyautogui(rng: random.Random) -> str:
    x, y = _xy(rng)
    return rng.choice([
        f"pyautogui.click({x}, {y})", f"pyautogui.doubleClick(x={x}, y={y})",
        f"pyautogui.rightClick({x}, {y})", f"pyautogui.moveTo({x}, {y}, duration=0.2)",
        f"pyautogui.dragTo({x}, {y}, button='left')", f"pyautogui.scroll({rng.choice([-5, -3, 3, 5])})",
        f"pyautogui.write('{_word_text(rng, 2)}', interval=0.05)", f"pyautogui.press('{rng.choice(KEYS)}')",
        "pyautogui.hotkey(" + ", ".join(f"'{k}'" for k in rng.choice(HOTKEYS)) + ")",
    ])


def gen_gui(rng: random.Random) -> str:
    """Thought + action steps in several agent output formats."""
    x, y = _xy(rng)
    label, widget = rng.choice(LABELS), rng.choice(WIDGETS)
    thought = (f"{rng.choice(THOUGHT_OPENERS)} a {widget} labelled \"{label}\" near ({x}, {y}) "
               f"in the {rng.choice(APPS)} window. {rng.choice(VERBS_CLICK)[1]} it should "
               f"{rng.choice(['open the dialog', 'submit the form', 'save the changes', 'show the menu', 'move to the next page'])}.")
    fmt = rng.randrange(5)
    if fmt == 0:
        return f"<think>{thought}</think>{json.dumps(_action(rng))}"
    if fmt == 1:
        return f"Thought: {thought}\nAction: click(start_box='({x},{y})')"
    if fmt == 2:
        return f"## Thought\n{thought}\n## Action\n{label} {widget}\n## Code\n```python\n{_pyautogui(rng)}\n```"
    if fmt == 3:
        return f"Window \"{rng.choice(WINDOW_TITLES)}\" at ({x}, {y}) size {rng.randint(200, 1920)}x{rng.randint(150, 1080)}; focused={rng.choice(['true', 'false'])}"
    return json.dumps({"action_type": rng.choice(["CLICK", "TYPING", "PRESS", "SCROLL", "MOVE_TO", "HOTKEY", "DONE", "FAIL"]),
                       "parameters": {"x": x, "y": y}})


def gen_instruction(rng: random.Random) -> str:
    """MiniWoB-style and desktop-style task instructions."""
    w, n = rng.choice(WORDS), rng.randint(1, 99)
    return rng.choice([
        f"Click on the \"{rng.choice(LABELS)}\" button.",
        f"Select {w} from the list and click Submit.",
        f"Enter \"{rng.choice(NAMES)}\" into the text field and press Submit.",
        f"Click on the {rng.choice(COLORS)} {rng.choice(SHAPES)}.",
        f"Check the boxes for {w}, {rng.choice(WORDS)} and {rng.choice(WORDS)}, then click Submit.",
        f"Select {rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/20{rng.randint(10, 29)} as the date and hit submit.",
        f"Use the slider to select {n} and click Submit.",
        f"Type the number {n} in the box and press enter.",
        f"Find the email by {rng.choice(NAMES)} and reply to them with the text \"{_word_text(rng, 3)}\".",
        f"Drag the item {w} to the top of the list.",
        f"Expand the section titled {w.capitalize()} and click the link inside it.",
        f"Open {rng.choice(APPS)} and create a new file named {w}_{n}.txt on the Desktop.",
        f"In {rng.choice(APPS)}, change the font size of the selected text to {rng.choice([10, 12, 14, 18, 24])} points.",
        f"Set cell {rng.choice('ABCDEFGH')}{n} to the sum of column {rng.choice('ABCDEFGH')}.",
        f"Rename the folder \"{w}\" to \"{rng.choice(WORDS)}\" and move it to Documents.",
        f"Turn on dark mode in the settings and close the window.",
        f"Search for \"{_word_text(rng, 2)}\" and open the {rng.choice(['first', 'second', 'third', 'last'])} result.",
        f"Scroll down until you see the {rng.choice(LABELS)} {rng.choice(WIDGETS)} and click it.",
        f"Copy the text from the {rng.choice(['first', 'second', 'third'])} paragraph and paste it into the search bar.",
        f"Press {'+'.join(rng.choice(HOTKEYS))} to {rng.choice(['copy', 'paste', 'undo', 'save', 'open a new tab'])}.",
    ])


def gen_code(rng: random.Random) -> str:
    """Code-ish snippets: Python, shell, HTML, JSON, paths."""
    w, w2, n = rng.choice(WORDS), rng.choice(WORDS), rng.randint(0, 4096)
    return rng.choice([
        f"def {w}_{w2}(x: int, y: int) -> tuple[int, int]:\n    \"\"\"Return the {w} point.\"\"\"\n    return x + {n}, y - {n % 97}\n",
        f"for i in range({n % 50}):\n    if items[i].{w} is None:\n        continue\n    print(f\"{{i}}: {{items[i]}}\")\n",
        f"class {w.capitalize()}Config:\n    {w2}: int = {n}\n    enabled: bool = {rng.choice(['True', 'False'])}\n",
        f"import os\npath = os.path.join(\"/home/user\", \"{w}\", \"{w2}.txt\")\nwith open(path, encoding=\"utf-8\") as f:\n    data = f.read()\n",
        f"$ ls -la ~/{w}/\n$ cp {w}.txt /tmp/{w2}.txt\n$ grep -n \"{w2}\" *.py | head -n {n % 20 + 1}\n",
        f"<button id=\"{w}-btn\" class=\"btn btn-primary\" type=\"submit\">{rng.choice(LABELS)}</button>",
        f"<input type=\"text\" id=\"{w}\" name=\"{w2}\" value=\"\" placeholder=\"{rng.choice(LABELS)}\">",
        f"<div class=\"{w}\"><a href=\"/{w2}/{n}\">{w.capitalize()} {w2}</a></div>",
        json.dumps({"id": f"{w}-{n}", "instruction": gen_instruction(rng), "config": [{"type": "launch", "parameters": {"command": [w2]}}]}),
        f"if ({w} > {n}) {{ return {w2}.map(x => x * 2); }} else {{ throw new Error(\"{w} too small\"); }}",
        f"SELECT {w}, COUNT(*) FROM {w2} WHERE id > {n} GROUP BY {w} ORDER BY 2 DESC;",
        f"xdotool mousemove {_xy(rng)[0]} {_xy(rng)[1]} click 1 && xdotool key ctrl+{rng.choice('acvsz')}",
    ])


def gen_chat(rng: random.Random) -> str:
    """Short chat exchanges in plain English."""
    name, w = rng.choice(NAMES), rng.choice(WORDS)
    q = rng.choice([
        f"Can you help me find the {w} file I saved yesterday?",
        f"How do I change the screen resolution to {rng.choice(['1920x1080', '1280x800', '2560x1440'])}?",
        f"What does the {rng.choice(LABELS)} button do?",
        f"Please send an email to {name} about the {w} meeting.",
        f"Why is my {rng.choice(APPS)} window so slow today?",
        f"Could you sort this list by date, newest first?",
        f"Is it going to rain tomorrow in the city?",
    ])
    a = rng.choice([
        "Sure. First open the menu at the top, then choose the option you need and confirm.",
        f"I found it in the Documents folder; it is called {w}.txt and was modified at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}.",
        "I cannot do that from here, because the application is not installed on this machine.",
        f"Done. I clicked {rng.choice(LABELS)} and the change has been applied.",
        "Let me take a screenshot first to see what is on the screen right now.",
        "That button saves your work and closes the dialog. If you want to keep it open, use Apply instead.",
    ])
    if rng.random() < 0.5:  # the model's own chat layout (role names follow the role tokens)
        system = "<|im_system|>system<|im_middle|>You are a helpful assistant.<|im_end|>" if rng.random() < 0.3 else ""
        return (f"{system}<|im_user|>user<|im_middle|>{q}<|im_end|>"
                f"<|im_assistant|>assistant<|im_middle|>{a}<|im_end|>")
    return f"User: {q}\nAssistant: {a}"


GENERATORS: dict[str, tuple[Callable[[random.Random], str], int]] = {
    # file stem -> (generator, number of samples)
    "gui_actions": (gen_gui, 900),
    "instructions": (gen_instruction, 1600),
    "code": (gen_code, 700),
    "chat": (gen_chat, 700),
    "sentences": (gen_sentences, 700),
}


def write_corpus(out_dir: Path = CORPUS_DIR, seed: int = SEED) -> list[Path]:
    """(Re)write the generated corpus files; ``prose.txt`` is hand-written and left alone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (gen, count) in GENERATORS.items():
        rng = random.Random(f"{seed}-{stem}")  # str seeds are stable across Python versions
        path = out_dir / f"{stem}.txt"
        path.write_text("\n\n".join(gen(rng) for _ in range(count)) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _iter_files(paths: list[Path]) -> Iterator[Path]:
    yield from sorted(paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-corpus", action="store_true", help="regenerate the generated corpus files first")
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="directory of *.txt training files")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="total vocabulary incl. special tokens")
    parser.add_argument("--out", type=Path, default=DEFAULT_TOKENIZER_FILE, help="where to write tokenizer.json")
    args = parser.parse_args(argv)
    if args.write_corpus:
        for path in write_corpus(args.corpus):
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")
    files = list(_iter_files(list(args.corpus.glob("*.txt"))))
    if not files:
        parser.error(f"no *.txt files in {args.corpus}; run with --write-corpus")
    tok = train_tokenizer(files, vocab_size=args.vocab_size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(args.out))
    size = sum(f.stat().st_size for f in files)
    print(f"trained vocab={tok.get_vocab_size()} on {len(files)} files ({size // 1024} KB) -> "
          f"{args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
