"""Sphinx extension: the book serves its own MathJax and Jupyter widgets manager.

Without it every page loads MathJax and the widgets' JavaScript from CDNs, and a reader
offline sees raw `\\( ... \\)` and dead widgets. At build time this fetches three pinned
npm packages, checks each tarball against the registry's sha512 *and* sha1, unpacks the
files a page needs into `_build/.vendor/vendor/...` and adds that folder to
`html_static_path`, so they land in `_build/html/_static/vendor/`. `_config.yml` points
`mathjax_path` and `nb_ipywidgets_js` at them; the build fails if it points elsewhere.

Tarballs are cached (`_build/.vendor-cache/`, or `$BOOK_VENDOR_CACHE`): a second build
does no network. Offline, put the tarballs listed in PACKAGES into that folder by hand.
Nothing of this is committed (`_build/` is git-ignored).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)
REGISTRY = "https://registry.npmjs.org"
PREFIX = "vendor"  # under _static/


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's `dist.integrity` (sha512, base64)
    shasum: str  # the registry's `dist.shasum` (sha1, hex)
    source: str  # the folder (or file) inside the tarball that is served
    dest: str  # where it lands under _static/vendor/
    skip: tuple[str, ...] = ()  # paths under `source` (or suffixes *.x) not served

    @property
    def tarball(self) -> str:
        return f"{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"

    @property
    def url(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.tarball}"


MATHJAX_BUNDLES = ("tex-svg", "tex-mml-svg", "tex-svg-full", "mml-svg", "mml-chtml",
                   "tex-mml-chtml", "tex-chtml-full", "tex-chtml-full-speech",
                   "node-main", "latest")
PACKAGES = (
    # es5/tex-chtml.js finds its fonts (output/chtml/fonts/woff-v2) and the TeX
    # extensions it autoloads next to itself.
    Package("mathjax", "3.2.2",
            "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
            "c754d7b46a679d7f3fa03543d6b8bf124ddf9f6b",
            "package/es5", "mathjax",
            skip=(*(f"{b}.js" for b in MATHJAX_BUNDLES), "output/svg", "output/svg.js")),
    # embed-amd.js bundles the base, controls and output widgets (ipywidgets 8) and
    # renders every widget-state script on the page; it needs require.js first.
    Package("@jupyter-widgets/html-manager", "1.0.15",
            "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
            "3d82fba512edcab82512e679be25c917f1b83fd1",
            "package/dist", "jupyter-widgets",
            skip=("embed.js", "libembed-amd.js", "*.map")),
    Package("requirejs", "2.3.8",
            "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
            "bca0614b618ab2122462597e44878db7558bbba3",
            "package/require.js", "requirejs/require.js"),
)
# Written next to embed-amd.js and loaded between require.js and it (see _config.yml).
WIDGETS_SETUP = "jupyter-widgets/offline-setup.js"
WIDGETS_SETUP_JS = """\
// Written by _ext/vendor_js.py: what the widgets manager needs to work offline.
(function () {
  // 1. The manager's modules find their fonts next to "their" URL, which require.js
  //    derives from the module name: map those names onto this folder.
  var here = document.currentScript.src.replace(/[^/]*$/, "").replace(/\\/$/, "");
  require.config({paths: {"@jupyter-widgets": here,
                          "@jupyter-widgets/html-manager/dist": here}});
  // 2. The controls typeset their labels with MathJax 2's MathJax.Hub.Queue; the book
  //    ships MathJax 3. Map that one call onto MathJax 3 once MathJax is there.
  window.addEventListener("load", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup) return;
    mj.Hub = {Queue: function (job) {
      var el = job && job[2];
      if (!el) return;
      mj.startup.promise.then(function () { return mj.typesetPromise([el]); })
        .catch(function (err) { console.error(err); });
    }};
  });
})();
"""
LICENSES = {"mathjax": "package/LICENSE"}  # require.js carries its licence inside


def verify(data: bytes, pkg: Package) -> None:
    """Raise ValueError unless `data` has the registry's sha512 and sha1 for `pkg`."""
    algo, _, want = pkg.integrity.partition("-")
    if algo != "sha512":
        raise ValueError(f"{pkg.name}: integrity must be sha512-..., got {algo!r}")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    sha1 = hashlib.sha1(data).hexdigest()
    if got != want or sha1 != pkg.shasum:
        raise ValueError(f"{pkg.name}@{pkg.version}: tarball does not match the pinned "
                         f"hashes (sha512 {got[:16]}..., sha1 {sha1}); expected "
                         f"{want[:16]}..., {pkg.shasum}")


def fetch(pkg: Package, cache: Path, opener=None) -> bytes:
    """The verified tarball of `pkg`: from `cache`, else the registry (then cached)."""
    opener = opener or urllib.request.urlopen
    path = cache / pkg.tarball
    if path.is_file():
        data = path.read_bytes()
        try:
            verify(data, pkg)
            return data
        except ValueError:
            logger.info(f"[vendor_js] {path} is corrupt; downloading it again")
    logger.info(f"[vendor_js] downloading {pkg.url}")
    try:
        with opener(pkg.url, timeout=60) as response:
            data = response.read()
    except OSError as err:
        raise ExtensionError(f"vendor_js: could not download {pkg.url} ({err}); put "
                             f"that file into {cache} by hand to build offline") from err
    verify(data, pkg)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


def _served(rel: str, skip: tuple[str, ...]) -> bool:
    for pattern in skip:
        if pattern.startswith("*") and rel.endswith(pattern[1:]):
            return False
        if rel == pattern or rel.startswith(pattern + "/"):
            return False
    return True


def unpack(pkg: Package, tarball: Path, root: Path) -> int:
    """Extract the served files of `pkg` into root/vendor/<dest>; return how many."""
    dest = root / PREFIX / pkg.dest
    count = 0
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            if member.name == pkg.source:  # a single file
                target = dest
            elif member.name.startswith(pkg.source + "/"):
                rel = member.name[len(pkg.source) + 1:]
                if not _served(rel, pkg.skip):
                    continue
                target = dest / rel
            elif member.name == LICENSES.get(pkg.name):
                target = root / PREFIX / f"LICENSE-{pkg.name}"
            else:
                continue
            if ".." in Path(member.name).parts:
                raise ExtensionError(f"vendor_js: unsafe path {member.name} in "
                                     f"{tarball}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    if count == 0:
        raise ExtensionError(f"vendor_js: nothing under {pkg.source} in {tarball}")
    return count


def vendor(build_dir: Path, cache: Path | None = None) -> Path:
    """Fetch, verify and unpack every package; return the html_static_path folder."""
    cache = Path(cache or os.environ.get("BOOK_VENDOR_CACHE")
                 or build_dir / ".vendor-cache")
    root = build_dir / ".vendor"
    for pkg in PACKAGES:
        stamp = root / f".{pkg.dest.split('/')[0]}-{pkg.version}.done"
        fetch(pkg, cache)  # verifies the cached tarball (and downloads it if missing)
        if stamp.exists():
            continue
        shutil.rmtree(root / PREFIX / pkg.dest.split("/")[0], ignore_errors=True)
        count = unpack(pkg, cache / pkg.tarball, root)
        stamp.write_text(f"{pkg.name}@{pkg.version}: {count} files\n")
        logger.info(f"[vendor_js] {pkg.name}@{pkg.version}: {count} files")
    setup_js = root / PREFIX / WIDGETS_SETUP
    if not setup_js.is_file() or setup_js.read_text() != WIDGETS_SETUP_JS:
        setup_js.parent.mkdir(parents=True, exist_ok=True)
        setup_js.write_text(WIDGETS_SETUP_JS)
    return root


def _check_config(config, root: Path) -> None:
    """The book must point at the vendored files, and they must exist."""
    wanted = [config.mathjax_path, *getattr(config, "nb_ipywidgets_js", {}).keys()]
    for path in wanted:
        if "://" in path or not path.startswith(PREFIX + "/"):
            raise ExtensionError(f"vendor_js: {path!r} is not served by the book; "
                                 f"point mathjax_path and nb_ipywidgets_js at "
                                 f"{PREFIX}/...")
        if not (root / path).is_file():
            raise ExtensionError(f"vendor_js: {path!r} is not among the vendored files")


def _on_config_inited(app, config) -> None:
    root = vendor(Path(app.outdir).parent)
    _check_config(config, root)
    if str(root) not in config.html_static_path:
        config.html_static_path = [*config.html_static_path, str(root)]


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of identical <script>s (same src and attributes, any priority).

    Inline scripts added at `env-before-read-docs` (sphinx-thebe's `const THEBE_JS_URL`,
    sphinx-togglebutton's selector) reach each page twice, once with the filename None
    and once with "", which Sphinx does not see as equal; the second `const` is a
    SyntaxError in every page's console."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, kept = set(), []
    for js in scripts:
        attributes = getattr(js, "attributes", {})
        key = (str(getattr(js, "filename", js) or ""),  # None and "" alike
               tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def setup(app):
    app.connect("config-inited", _on_config_inited)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
