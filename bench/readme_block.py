"""Shared by the bench/render_*.py scripts: replaces (or appends) the block between
<!-- tag --> and <!-- /tag --> markers of a README with a rendered table."""
import re


def write_block(readme_path, tag, body):
    block = f"<!-- {tag} -->\n{body}\n<!-- /{tag} -->"
    readme = open(readme_path).read()
    if f"<!-- {tag} -->" in readme:
        readme = re.sub(rf"<!-- {re.escape(tag)} -->.*?<!-- /{re.escape(tag)} -->", lambda _: block, readme, flags=re.S)
    else:
        readme += "\n" + block + "\n"
    open(readme_path, "w").write(readme)
