"""Search queries for mined functions, written by the instruct completer the way people type them into a search
box ("python read json file into dict"): training text for the search embedder that looks like what users ask,
where docstring summaries look like documentation. The examples are written for this prompt, none taken from a
search benchmark."""
from __future__ import annotations

import re

from plusls.common.chat import chat_messages

SYSTEM = ("You write the web search query a Python developer would type to find a function like the one shown. "
          "Answer with the query only: 3 to 9 lowercase words, no quotes, no code.")
EXAMPLES = [
    ("def read_json(path):\n    with open(path, encoding='utf-8') as f:\n        return json.load(f)\n",
     "python read json file into dict"),
    ("def is_number(text):\n    try:\n        float(text)\n    except ValueError:\n        return False\n"
     "    return True\n", "check if a string can be converted to float python"),
    ("def chunks(items, size):\n    for start in range(0, len(items), size):\n"
     "        yield items[start:start + size]\n",
     "split list into batches of fixed size"),
    ("def assert_greater_equal(self, a, b, msg=None):\n    if not a >= b:\n"
     "        self.fail(self._formatMessage(msg, '%r not >= %r' % (a, b)))\n",
     "python unittest assert greater than or equal"),
]
MAX_CODE_CHARS, MAX_NEW_TOKENS = 800, 20
_WORDS = re.compile(r"[a-z0-9][a-z0-9 _.+#/-]*")


def query_messages(code: str) -> list[dict[str, str]]:
    return chat_messages(SYSTEM, EXAMPLES, code[:MAX_CODE_CHARS])


def clean_query(text: str) -> str:
    """The answer's first line as a query: lowercase words, 2 to 12 of them; "" otherwise."""
    line = text.strip().split("\n")[0].strip().strip("\"'`").lower()
    if not _WORDS.fullmatch(line):
        return ""
    words = line.split()
    return " ".join(words) if 2 <= len(words) <= 12 else ""
