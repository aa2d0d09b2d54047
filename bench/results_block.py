"""Shared by the bench/render*.py scripts: replaces (or appends) the block between
<!-- tag --> and <!-- /tag --> markers of a markdown file (docs/results.md) with a rendered table."""
import re


def write_block(path, tag, body):
    block = f"<!-- {tag} -->\n{body}\n<!-- /{tag} -->"
    text = open(path).read()
    if f"<!-- {tag} -->" in text:
        text = re.sub(rf"<!-- {re.escape(tag)} -->.*?<!-- /{re.escape(tag)} -->", lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    open(path, "w").write(text)
