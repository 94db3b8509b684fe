"""_ext/vendor_js.py: the pinned npm tarballs behind the book's offline math and widgets.

No network: fake tarballs built here, served by a fake opener.
"""

import base64
import hashlib
import importlib.util
import io
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from sphinx.errors import ExtensionError

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("vendor_js", ROOT / "_ext" / "vendor_js.py")
vendor_js = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("vendor_js", vendor_js)  # dataclasses look their module up
_spec.loader.exec_module(vendor_js)


def make_tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def package_for(data: bytes, **kw) -> "vendor_js.Package":
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    fields = dict(name="@demo/pkg", version="1.2.3", integrity=integrity,
                  shasum=hashlib.sha1(data).hexdigest(), source="package/dist", dest="demo",
                  skip=("*.map", "big.js"))
    fields.update(kw)
    return vendor_js.Package(**fields)


class FakeOpener:
    def __init__(self, data=None, error=None):
        self.data, self.error, self.urls = data, error, []

    def __call__(self, url, timeout):
        self.urls.append(url)
        if self.error:
            raise self.error
        return io.BytesIO(self.data)


TARBALL = make_tarball({"package/dist/embed.js": b"//js", "package/dist/embed.js.map": b"{}",
                        "package/dist/big.js": b"//big", "package/dist/fonts/a.woff": b"W",
                        "package/README.md": b"readme"})


def test_the_url_is_the_registry_tarball_of_the_pinned_version():
    pkg = package_for(TARBALL)
    assert pkg.url == "https://registry.npmjs.org/@demo/pkg/-/pkg-1.2.3.tgz"


def test_verify_accepts_the_pinned_bytes_and_rejects_any_other():
    pkg = package_for(TARBALL)
    vendor_js.verify(TARBALL, pkg)
    with pytest.raises(ValueError, match="does not match the pinned hashes"):
        vendor_js.verify(TARBALL + b"\0", pkg)
    # The sha1 is checked too, not only the sha512.
    with pytest.raises(ValueError, match="does not match the pinned hashes"):
        vendor_js.verify(TARBALL, package_for(TARBALL, shasum="0" * 40))
    with pytest.raises(ValueError, match="integrity must be sha512"):
        vendor_js.verify(TARBALL, package_for(TARBALL, integrity="sha1-abc"))


def test_fetch_downloads_once_then_reads_the_cache(tmp_path):
    pkg = package_for(TARBALL)
    opener = FakeOpener(TARBALL)
    assert vendor_js.fetch(pkg, tmp_path, opener) == TARBALL
    assert opener.urls == [pkg.url]
    assert (tmp_path / "pkg-1.2.3.tgz").read_bytes() == TARBALL
    offline = FakeOpener(error=OSError("offline"))
    assert vendor_js.fetch(pkg, tmp_path, offline) == TARBALL
    assert offline.urls == [], "a cached, verified tarball must not be downloaded again"


def test_fetch_replaces_a_corrupt_cache_and_refuses_a_tampered_download(tmp_path):
    pkg = package_for(TARBALL)
    (tmp_path / "pkg-1.2.3.tgz").write_bytes(b"truncated")
    opener = FakeOpener(TARBALL)
    assert vendor_js.fetch(pkg, tmp_path, opener) == TARBALL and opener.urls == [pkg.url]
    (tmp_path / "pkg-1.2.3.tgz").unlink()
    with pytest.raises(ValueError, match="does not match"):
        vendor_js.fetch(pkg, tmp_path, FakeOpener(TARBALL + b"x"))
    assert not (tmp_path / "pkg-1.2.3.tgz").exists(), "a bad download must not be cached"


def test_fetch_offline_without_a_cache_says_where_to_put_the_file(tmp_path):
    with pytest.raises(ExtensionError, match="put that file into"):
        vendor_js.fetch(package_for(TARBALL), tmp_path, FakeOpener(error=OSError("down")))


def test_unpack_serves_the_source_folder_less_the_skipped_files(tmp_path):
    pkg = package_for(TARBALL)
    (tmp_path / "t.tgz").write_bytes(TARBALL)
    assert vendor_js.unpack(pkg, tmp_path / "t.tgz", tmp_path / "out") == 2
    served = sorted(p.relative_to(tmp_path / "out").as_posix()
                    for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert served == ["vendor/demo/embed.js", "vendor/demo/fonts/a.woff"]


def test_unpack_a_single_file_package(tmp_path):
    data = make_tarball({"package/require.js": b"//r", "package/bin/r.js": b"//x"})
    pkg = package_for(data, source="package/require.js", dest="requirejs/require.js")
    (tmp_path / "t.tgz").write_bytes(data)
    assert vendor_js.unpack(pkg, tmp_path / "t.tgz", tmp_path) == 1
    assert (tmp_path / "vendor/requirejs/require.js").read_bytes() == b"//r"


def test_unpack_fails_when_the_source_folder_is_missing(tmp_path):
    pkg = package_for(TARBALL, source="package/lib")
    (tmp_path / "t.tgz").write_bytes(TARBALL)
    with pytest.raises(ExtensionError, match="nothing under package/lib"):
        vendor_js.unpack(pkg, tmp_path / "t.tgz", tmp_path)


def test_the_pins_are_exact_versions_with_registry_hashes():
    names = {p.name for p in vendor_js.PACKAGES}
    assert names == {"mathjax", "@jupyter-widgets/html-manager", "requirejs"}
    for p in vendor_js.PACKAGES:
        assert all(part.isdigit() for part in p.version.split(".")), p.version
        assert p.integrity.startswith("sha512-")
        assert len(base64.b64decode(p.integrity[7:])) == 64, p.name
        assert len(p.shasum) == 40 and int(p.shasum, 16) >= 0, p.name
    mathjax = next(p for p in vendor_js.PACKAGES if p.name == "mathjax")
    assert mathjax.version.startswith("3."), "the book's config is MathJax 3's (mathjax3_config)"


def _sphinx_config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]


def test_the_book_points_at_files_the_packages_serve():
    """mathjax_path and nb_ipywidgets_js in _config.yml name vendored files."""
    config = _sphinx_config()
    assert config["local_extensions"]["vendor_js"] == "_ext"
    paths = [config["config"]["mathjax_path"], *config["config"]["nb_ipywidgets_js"]]
    assert len(paths) == 4
    for path in paths:
        assert path.startswith("vendor/"), path
        rel = path[len("vendor/"):]
        if rel == vendor_js.WIDGETS_SETUP:  # written by the extension itself
            continue
        owners = [p for p in vendor_js.PACKAGES if rel == p.dest or rel.startswith(p.dest + "/")]
        assert len(owners) == 1, f"{path}: served by no package"
        pkg = owners[0]
        if rel != pkg.dest:  # a file inside a served folder: not skipped
            assert vendor_js._served(rel[len(pkg.dest) + 1:], pkg.skip), path
    # require.js first, then its configuration, then the widgets manager that needs both.
    assert [p.rsplit("/", 1)[1] for p in paths[1:]] == ["require.js", "offline-setup.js",
                                                        "embed-amd.js"]


def test_the_widgets_setup_maps_the_modules_and_mathjax_2s_one_call():
    js = vendor_js.WIDGETS_SETUP_JS
    assert '"@jupyter-widgets/html-manager/dist": here' in js  # where its fonts are
    assert "mj.Hub = {Queue:" in js and "typesetPromise" in js  # MathJax 2 call -> 3


def test_check_config_refuses_a_cdn_or_a_missing_file(tmp_path):
    (tmp_path / "vendor" / "m").mkdir(parents=True)
    (tmp_path / "vendor" / "m" / "tex.js").write_text("//")
    good = SimpleNamespace(mathjax_path="vendor/m/tex.js", nb_ipywidgets_js={})
    vendor_js._check_config(good, tmp_path)
    cdn = SimpleNamespace(mathjax_path="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex.js",
                          nb_ipywidgets_js={})
    with pytest.raises(ExtensionError, match="is not served by the book"):
        vendor_js._check_config(cdn, tmp_path)
    missing = SimpleNamespace(mathjax_path="vendor/m/tex.js",
                              nb_ipywidgets_js={"vendor/w/embed-amd.js": {}})
    with pytest.raises(ExtensionError, match="not among the vendored files"):
        vendor_js._check_config(missing, tmp_path)


def test_vendor_twice_offline_from_the_cache(tmp_path, monkeypatch):
    """With the tarballs cached, a build touches no network and unpacks only once."""
    pkg = package_for(TARBALL)
    monkeypatch.setattr(vendor_js, "PACKAGES", (pkg,))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / pkg.tarball).write_bytes(TARBALL)

    def no_network(*args, **kwargs):
        raise AssertionError("the registry was asked although the cache had the file")

    monkeypatch.setattr(vendor_js.urllib.request, "urlopen", no_network)
    root = vendor_js.vendor(tmp_path / "_build", cache)
    served = root / "vendor" / "demo" / "embed.js"
    assert served.read_bytes() == b"//js"
    assert (root / "vendor" / vendor_js.WIDGETS_SETUP).read_text() == vendor_js.WIDGETS_SETUP_JS
    served.write_bytes(b"//mine")  # a second build does not unpack again
    assert vendor_js.vendor(tmp_path / "_build", cache) == root
    assert served.read_bytes() == b"//mine"


def test_identical_scripts_are_kept_once_whatever_their_filename_none_or_empty():
    from sphinx.builders.html._assets import _JavaScript

    thebe = dict(body="const THEBE_JS_URL = 1")
    scripts = [_JavaScript(None, **thebe), _JavaScript("_static/a.js"),
               _JavaScript("", priority=900, **thebe), _JavaScript("", body="other")]
    context = {"script_files": scripts}
    vendor_js._drop_duplicate_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is scripts
    assert [js.attributes.get("body") for js in scripts] == [thebe["body"], None, "other"]
