"""The README's checkable facts stay true (no prose is tested): the version
against ``agvm_mm.__version__`` and the changelog, the zoo's counts against
``tools/zoo_check.py``'s list, every relative link of the README and the
docs resolving, and every path the README names (its layout above all)
existing. Plain file reading: no torch, no network, well under a second."""
import ast
import glob
import os
import re

import pytest

from tools.zoo_check import ZOO

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, 'README.md')
# the zoo's configs whose check needs CUDA on a CPU: mmcv's CARAFE op has
# no CPU kernel (tests/test_zoo.py, test_cuda_only_and_real_problems)
NEEDS_CUDA = [e.name for e in ZOO if 'carafe' in e.config]


def read(path: str) -> str:
    with open(path, encoding='utf-8') as f:
        return f.read()


def words(text: str) -> str:
    """The text with every run of white space as one space (a figure may
    wrap across lines)."""
    return re.sub(r'\s+', ' ', text)


def without_code_blocks(text: str) -> str:
    return re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)


def package_version() -> str:
    """``agvm_mm.__version__``, read from its source (what pyproject.toml
    reads too), so that this file needs no torch."""
    tree = ast.parse(read(os.path.join(ROOT, 'agvm_mm', '__init__.py')))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '__version__'
                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError('agvm_mm/__init__.py sets no __version__')


def test_version_matches_the_package_and_the_changelog():
    version = package_version()
    stated = re.findall(r'Version \*\*([^*]+)\*\*', read(README))
    assert stated == [version], (
        f'README states version {stated}, agvm_mm.__version__ is {version}')
    headings = re.findall(r'^## (\S+)', read(
        os.path.join(ROOT, 'docs', 'changelog.md')), flags=re.M)
    assert version in headings, (
        f'docs/changelog.md has no "## {version}" section: {headings}')


@pytest.mark.parametrize('doc', ['README.md', 'docs/tools.md'])
def test_zoo_counts_match_zoo_check(doc):
    text = words(read(os.path.join(ROOT, doc)))
    total = [int(n) for n in re.findall(
        r'(\d+) (?:popular )?stock configs', text)]
    assert total and set(total) == {len(ZOO)}, (
        f'{doc} counts {total} stock configs in the zoo; '
        f'tools/zoo_check.py lists {len(ZOO)}')
    passing = [int(n) for n in re.findall(r'(\d+) pass\b', text)]
    cuda = [int(n) for n in re.findall(r'(\d+) needs? CUDA', text)]
    assert passing == [len(ZOO) - len(NEEDS_CUDA)], (
        f'{doc}: "{passing} pass" where {len(ZOO)} configs, '
        f'{len(NEEDS_CUDA)} of them CUDA only ({NEEDS_CUDA})')
    assert cuda == [len(NEEDS_CUDA)], (
        f'{doc}: "{cuda} needs CUDA", the zoo has {NEEDS_CUDA}')


DOCS = ['README.md', 'configs/README.md'] + sorted(
    os.path.relpath(p, ROOT)
    for pattern in ('docs/*.md', 'docs/results/*.md')
    for p in glob.glob(os.path.join(ROOT, pattern)))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


@pytest.mark.parametrize('doc', DOCS)
def test_relative_links_resolve(doc):
    path = os.path.join(ROOT, doc)
    text = without_code_blocks(read(path))
    anchors = {slug(h) for h in re.findall(r'^#+ (.*)$', text, flags=re.M)}
    broken = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z][a-z0-9+.-]*:', target):  # https:, mailto:
            continue
        file, _, anchor = target.partition('#')
        if not file:  # a heading of this page
            if anchor not in anchors:
                broken.append(target)
            continue
        if not os.path.exists(os.path.join(os.path.dirname(path), file)):
            broken.append(target)
    assert not broken, f'{doc}: links that lead nowhere: {broken}'


def layout_paths():
    """The paths the README's layout block names: a line that starts in the
    first column names a top folder, the words after it (and on the
    indented lines below) are paths inside it; ``(...)`` is a comment and
    ``a/{b,c}.py`` names ``a/b.py`` and ``a/c.py``."""
    text = read(README)
    block = re.search(r'^## Layout\s*\n+```\n(.*?)^```', text,
                      flags=re.S | re.M)
    assert block, 'README.md has no ## Layout code block'
    paths, top = [], None
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        line = re.sub(r'\([^()]*\)', ' ', line)
        tokens = line.split()
        if not line[0].isspace():
            top, tokens = tokens[0], tokens[1:]
            paths.append(top)
        for token in tokens:
            brace = re.fullmatch(r'(.*)\{([^}]*)\}(.*)', token)
            names = ([brace.group(1) + alt + brace.group(3)
                      for alt in brace.group(2).split(',')]
                     if brace else [token])
            paths += [os.path.join(top, name) for name in names]
    return paths


def test_layout_paths_exist():
    paths = layout_paths()
    assert len(paths) > 20
    missing = [p for p in paths if not os.path.exists(os.path.join(ROOT, p))]
    assert not missing, f'README layout names paths that do not exist: ' \
        f'{missing}'


def test_layout_names_every_module_of_the_package():
    """Every module of agvm_mm/ and agvm_mm/optim/, and every subpackage,
    is in the layout (a new one must be added there)."""
    named = {os.path.normpath(p) for p in layout_paths()}
    named |= {os.path.dirname(p) for p in named}  # optim/ by its files
    package = os.path.join(ROOT, 'agvm_mm')
    expected = [
        os.path.relpath(p, ROOT)
        for p in glob.glob(os.path.join(package, '*.py')) +
        glob.glob(os.path.join(package, 'optim', '*.py'))
        if not p.endswith(os.path.join('optim', '__init__.py'))
    ] + [
        os.path.relpath(os.path.dirname(p), ROOT)
        for p in glob.glob(os.path.join(package, '*', '__init__.py'))
    ]
    unnamed = sorted(p for p in expected if os.path.normpath(p) not in named)
    assert not unnamed, f'README layout does not name {unnamed}'


def test_paths_named_in_the_readme_exist():
    """Every repository path the README writes out (commands, links,
    prose), e.g. tools/dist_train.sh or configs/faster_rcnn/<file>.py."""
    text = read(README)
    named = set(re.findall(
        r'(?<![\w/.:-])((?:agvm_mm|configs|docs|tests|tools)/[\w./-]*[\w/])',
        text))
    assert len(named) > 20
    missing = sorted(p for p in named
                     if not os.path.exists(os.path.join(ROOT, p)))
    assert not missing, f'README names paths that do not exist: {missing}'
