"""Builds `jaxaudit/taxonomy/imagenet_wordnet.json` from a local WordNet 3.0.

The ImageNet-1k part of WordNet 3.0's noun hierarchy: for each of the 1000
classes (in `jaxaudit.classes.imagenet1k_classes()` order) its wnid, name and
every hypernym path to the root, plus the first lemma of each ancestor synset.
jaxaudit reads only that file at run time, so nothing is downloaded.

Reads Debian's `wordnet-base` database (`apt-get install wordnet-base`), whose
`data.noun` is plain text in which the number of a wnid is the byte offset of
its line: n02123045 -> seek 2123045 ->
`02123045 05 n 02 tabby 1 tabby_cat 0 001 @ 02121808 n 0000 | ...`;
`@` (hypernym) and `@i` (instance hypernym) pointers lead to the parents.

  python scripts/build_wordnet.py [--wordnet_dir=/usr/share/wordnet]
"""

from __future__ import annotations

import argparse
import json
import os

from jaxaudit import classes

DEFAULT_WORDNET_DIR = "/usr/share/wordnet"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "jaxaudit", "taxonomy", "imagenet_wordnet.json")
_HYPERNYM_POINTERS = ("@", "@i")


def read_synset(data_noun, wnid: str) -> tuple[str, list[str]]:
  """The first lemma and the hypernym wnids of a noun synset.

  Args:
    data_noun: `data.noun` opened in binary mode.
    wnid: "n" + the 8-digit byte offset.

  Returns:
    (name with spaces, parent wnids in file order).
  """
  offset = int(wnid[1:])
  data_noun.seek(offset)
  fields = data_noun.readline().decode("utf-8").split(" | ")[0].split()
  if int(fields[0]) != offset or fields[2] != "n":
    raise ValueError(f"{wnid}: no noun synset at byte {offset} of data.noun")
  num_words = int(fields[3], 16)
  name = fields[4].replace("_", " ")
  at = 4 + 2 * num_words
  num_pointers = int(fields[at])
  parents = []
  for k in range(num_pointers):
    symbol, target, pos = fields[at + 1 + 4 * k: at + 4 + 4 * k]
    if symbol in _HYPERNYM_POINTERS and pos == "n":
      parents.append("n" + target)
  return name, parents


def build(wordnet_dir: str = DEFAULT_WORDNET_DIR) -> dict:
  """The file's content: classes with their root-first hypernym paths.

  Args:
    wordnet_dir: folder holding WordNet 3.0's `data.noun`.

  Returns:
    {"about", "classes": [{"wnid", "name", "paths"}], "names": {wnid: name}}
    where each path is a list of wnids from the root (entity) to the class;
    a class's paths are sorted by length, then lexicographically.
  """
  names: dict[str, str] = {}
  parents: dict[str, list[str]] = {}
  with open(os.path.join(wordnet_dir, "data.noun"), "rb") as data_noun:

    def visit(wnid: str) -> None:
      if wnid not in parents:
        names[wnid], parents[wnid] = read_synset(data_noun, wnid)
        for parent in parents[wnid]:
          visit(parent)

    for wnid, _ in classes.imagenet1k_classes():
      visit(wnid)

  def paths_to_root(wnid: str) -> list[list[str]]:
    if not parents[wnid]:
      return [[wnid]]
    return [path + [wnid] for parent in parents[wnid]
            for path in paths_to_root(parent)]

  entries = []
  for wnid, name in classes.imagenet1k_classes():
    paths = sorted(paths_to_root(wnid), key=lambda p: (len(p), p))
    entries.append({"wnid": wnid, "name": name, "paths": paths})
  return {
      "about": "ImageNet-1k part of the WordNet 3.0 noun hierarchy "
               "(Princeton University, WordNet 3.0 license), built by "
               "scripts/build_wordnet.py; paths run from the root to the "
               "class.",
      "classes": entries,
      "names": dict(sorted(names.items())),
  }


def dumps(content: dict) -> str:
  """Stable JSON text with one class per line (small diffs on rebuild)."""
  lines = ["{", f' "about": {json.dumps(content["about"])},', ' "classes": [']
  lines += [f"  {json.dumps(entry)}," for entry in content["classes"]]
  lines[-1] = lines[-1].rstrip(",")
  lines += [" ],", f' "names": {json.dumps(content["names"])}', "}"]
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--wordnet_dir", default=DEFAULT_WORDNET_DIR)
  parser.add_argument("--output", default=OUTPUT)
  args = parser.parse_args()
  text = dumps(build(args.wordnet_dir))
  with open(args.output, "w") as f:
    f.write(text)
  print(f"wrote {args.output} ({len(text)} bytes)")


if __name__ == "__main__":
  main()
