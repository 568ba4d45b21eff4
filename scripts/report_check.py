"""Opens a jaxaudit report in headless Chromium: counts images that failed to load
and saves a screenshot.

  python scripts/report_check.py /tmp/jaxaudit-demo/report.html --screenshot=shot.png

Prints `images=N broken=K`; exits non-zero if any image is broken.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
          "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync",
          "--hide-scrollbars", "--allow-file-access-from-files"]

# Appended to a copy of the page: after load, records how many images failed.
_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-broken', broken);
});
</script>"""


def chromium() -> str | None:
  for name in ("chromium", "chromium-browser", "google-chrome"):
    path = shutil.which(name)
    if path:
      return path
  return None


def _run(args: list[str], profile: str) -> str:
  result = subprocess.run([chromium(), *_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)
  return result.stdout


def check(page: str, screenshot: str = "", width: int = 1280,
          height: int = 2400) -> tuple[int, int]:
  """Returns (images, broken) for `page`; writes a PNG screenshot if asked."""
  page = os.path.abspath(page)
  probe = os.path.join(os.path.dirname(page), ".report_probe.html")
  with open(page) as f, open(probe, "w") as out:
    out.write(f.read().replace("</body>", _PROBE + "</body>"))
  try:
    with tempfile.TemporaryDirectory() as profile:
      dom = _run(["--virtual-time-budget=10000", "--dump-dom", f"file://{probe}"],
                 profile)
      if screenshot:
        _run([f"--screenshot={os.path.abspath(screenshot)}",
              f"--window-size={width},{height}", f"file://{page}"], profile)
  finally:
    os.remove(probe)
  images = re.search(r'data-images="(\d+)"', dom)
  broken = re.search(r'data-broken="(\d+)"', dom)
  if not images or not broken:
    raise RuntimeError(f"Chromium did not render {page}")
  return int(images.group(1)), int(broken.group(1))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("page")
  parser.add_argument("--screenshot", default="")
  parser.add_argument("--height", type=int, default=2400)
  args = parser.parse_args()
  if chromium() is None:
    sys.exit("error: no chromium on PATH (Debian: apt-get install chromium)")
  images, broken = check(args.page, args.screenshot, height=args.height)
  print(f"images={images} broken={broken}")
  sys.exit(1 if broken else 0)


if __name__ == "__main__":
  main()
