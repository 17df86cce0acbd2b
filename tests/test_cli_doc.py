"""``gotor doc``: real documents give the figures tests/vectors/documents.json records,
the README main command works (in process and as the installed command), every
error is one line and exit 1, tampering with a signed byte never exits 0.

Most tests call :func:`gotor.cli.main` in process; one runs the installed
``gotor`` console script the way the README does.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gotor.cli import main
from gotor.netdoc.authcert import parse_authcerts
from gotor.tools import doc as doctool

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"
DOCS = VECTORS / "docs"
CHUTNEY = DOCS / "testnet-arti-chutney-2020"
SHADOW = DOCS / "testnet-arti-shadow"
CHUTNEY_CONSENSUS = CHUTNEY / "mdconsensus1.txt"
CHUTNEY_CERTS = CHUTNEY / "authcerts2.txt"

COMMON_KEYS = {
    "type",
    "file",
    "valid_after",
    "valid_until",
    "signatures",
    "quorum",
    "now",
    "in_window",
    "verified",
    "problems",
}


def run_doc(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main(["doc", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, dict[str, Any]]:
    code, out, err = run_doc(capsys, *argv, "--json")
    assert err.count("\n") <= 1
    return code, json.loads(out)


@functools.cache
def expectations(doc_id: str) -> dict[str, Any]:
    data = json.loads((VECTORS / "documents.json").read_text())
    return next(d for d in data["documents"] if d["id"] == doc_id)


def iso(spec_time: str) -> str:
    """documents.json writes times as dir-spec does; the tool as ISO 8601 UTC."""
    return spec_time.replace(" ", "T") + "Z"


def assert_one_error_line(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 1
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("gotor doc: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


# --- the README main command -------------------------------------------------


def readme_main_command() -> list[str]:
    """The ``gotor doc ...`` of the README's main command (after ``pip install ... &&``)."""
    text = (ROOT / "README.md").read_text()
    line = next(ln for ln in text.splitlines() if "&& gotor doc " in ln)
    return shlex.split(line.split("&&", 1)[1])


def test_readme_main_command_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = readme_main_command()
    assert argv[:2] == ["gotor", "doc"]
    monkeypatch.chdir(ROOT)
    code, out, err = run_doc(capsys, *argv[2:])
    assert (code, err) == (0, "")
    assert re.search(r"^routers: +6$", out, re.MULTILINE)
    assert re.search(r"^quorum: +yes$", out, re.MULTILINE)
    assert re.search(r"^verified: +yes$", out, re.MULTILINE)
    assert re.search(r"^signatures: +valid 3, invalid 0, unknown key 0", out, re.MULTILINE)
    assert re.search(r"^valid after: +2020-08-07T12:42:40Z$", out, re.MULTILINE)
    assert "not judged" in out


def test_installed_gotor_command_runs_the_readme_main_command() -> None:
    argv = readme_main_command()
    exe = shutil.which("gotor", path=str(Path(sys.executable).parent)) or shutil.which("gotor")
    assert exe, "the gotor console script is not installed (pip install -e '.[dev]')"
    proc = subprocess.run(
        [exe, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert re.search(r"^quorum: +yes$", proc.stdout, re.MULTILINE)
    assert re.search(r"^routers: +6$", proc.stdout, re.MULTILINE)


def test_help_names_types_exit_codes_and_trust_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["doc", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for needle in (
        "consensus",
        "authcert",
        "microdesc",
        "exit status",
        "trusts the certificates",
        "pins its authorities",
        "--now",
        "--onion-address",
    ):
        assert needle in out


# --- real consensuses: the figures of documents.json ------------------------

CONSENSUSES = [
    # (file, certs, documents.json id, key in expected_from_our_recomputation or None)
    (CHUTNEY_CONSENSUS, CHUTNEY_CERTS, "testnet-chutney-2020", None),
    (
        SHADOW / "cached-microdesc-consensus",
        SHADOW / "cached-certs",
        "testnet-shadow-set",
        "cached-microdesc-consensus",
    ),
    (
        SHADOW / "cached-consensus",
        SHADOW / "cached-certs",
        "testnet-shadow-set",
        "cached-consensus",
    ),
]


@pytest.mark.parametrize(("path", "certs", "doc_id", "key"), CONSENSUSES, ids=lambda v: "")
def test_real_consensus_figures(
    capsys: pytest.CaptureFixture[str], path: Path, certs: Path, doc_id: str, key: str | None
) -> None:
    exp = expectations(doc_id)["expected_from_our_recomputation"]
    exp = exp[key] if key else exp
    code, out = run_json(capsys, path, "--certs", certs)
    assert code == 0
    assert COMMON_KEYS <= out.keys()
    assert out["type"] == "consensus"
    assert out["flavor"] == ("microdesc" if exp["first_line"].endswith("microdesc") else "ns")
    assert out["consensus_method"] == int(exp["consensus-method"])
    for field in ("valid-after", "fresh-until", "valid-until"):
        assert out[field.replace("-", "_")] == iso(exp[field])
    assert out["routers"] == exp["n_routerstatus"]
    assert out["authorities_listed"] == exp["n_dir_source"]
    assert {f: n for f, n in out["flags"].items() if n} == exp["flag_counts"]
    assert set(out["flags"]) == set(exp["known-flags"].split())
    n_sigs = exp["n_directory_signature"]
    assert exp["n_valid_signatures"] == n_sigs
    assert out["signatures"] == {
        "valid": n_sigs,
        "invalid": 0,
        "unknown_key": 0,
        "expired_key": 0,
        "unknown_algorithm": 0,
    }
    assert (out["trusted_authorities"], out["signed_by_trusted"]) == (n_sigs, n_sigs)
    assert out["quorum"] is True and out["verified"] is True
    assert (out["problems"], out["now"], out["in_window"]) == ([], None, None)


def test_chutney_consensus_matches_source_test_counts(capsys: pytest.CaptureFixture[str]) -> None:
    exp = expectations("testnet-chutney-2020")["expected_from_source_tests"]
    _, out = run_json(capsys, CHUTNEY_CONSENSUS, "--certs", CHUTNEY_CERTS)
    assert out["routers"] == exp["n_relays"]
    _, certs = run_json(capsys, CHUTNEY_CERTS)
    assert certs["certificates"] == exp["n_certs"]
    # The certificates are those of the consensus's signers.
    assert {c["fingerprint"] for c in certs["certs"]} == {s["identity"] for s in out["signers"]}


def test_without_certs_the_summary_prints_but_nothing_is_verified(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_doc(capsys, CHUTNEY_CONSENSUS)
    assert code == doctool.EXIT_NOT_VERIFIED
    assert re.search(r"^routers: +6$", out, re.MULTILINE)
    assert re.search(r"^quorum: +no$", out, re.MULTILINE)
    assert err.count("\n") == 1 and err.startswith("gotor doc: not verified: ")
    assert "--certs" in err
    code, js = run_json(capsys, CHUTNEY_CONSENSUS)
    assert code == doctool.EXIT_NOT_VERIFIED
    assert js["signatures"]["unknown_key"] == 3
    assert js["signatures"]["valid"] == js["signatures"]["invalid"] == 0
    assert (js["quorum"], js["verified"], js["trusted_authorities"]) == (False, False, 0)


def test_consdiff_consensus_without_certs(capsys: pytest.CaptureFixture[str]) -> None:
    exp = expectations("consdiff-small")["expected_from_our_recomputation"]
    code, out = run_json(capsys, DOCS / "consdiff-small/consensus2.txt")
    assert code == doctool.EXIT_NOT_VERIFIED
    assert out["routers"] == exp["consensus2_n_routerstatus"]
    assert out["valid_after"] == iso(exp["consensus2_valid-after"])
    assert out["signatures"]["unknown_key"] == exp["consensus2_n_directory_signature"]


def first_cert_only(tmp_path: Path) -> Path:
    data = CHUTNEY_CERTS.read_bytes()
    second = data.index(b"dir-key-certificate-version", 1)
    path = tmp_path / "cert1"
    path.write_bytes(data[:second])
    return path


def test_trust_is_the_certificates_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # One certificate: its authority is the only one trusted, and it signed.
    code, out = run_json(capsys, CHUTNEY_CONSENSUS, "--certs", first_cert_only(tmp_path))
    assert code == 0
    assert out["signatures"]["valid"] == 1 and out["signatures"]["unknown_key"] == 2
    assert (out["trusted_authorities"], out["signed_by_trusted"], out["quorum"]) == (1, 1, True)
    assert sorted(s["status"] for s in out["signers"]) == ["unknown key", "unknown key", "valid"]
    assert [s["trusted"] for s in out["signers"] if s["status"] == "valid"] == [True]
    # Another network's certificates: nothing signed by them.
    code, out = run_json(capsys, CHUTNEY_CONSENSUS, "--certs", SHADOW / "cached-certs")
    assert code == doctool.EXIT_NOT_VERIFIED
    assert out["signatures"]["unknown_key"] == 3
    assert (out["trusted_authorities"], out["signed_by_trusted"], out["quorum"]) == (4, 0, False)
    assert "no quorum" in out["problems"][0]


# --- the validity window -------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        "2020-08-07T12:43:00",
        "2020-08-07T12:43:00Z",
        "2020-08-07T14:43:00+02:00",
        "2020-08-07T12:42:40",
        "2020-08-07T12:43:20Z",
    ],
)
def test_now_inside_the_window(capsys: pytest.CaptureFixture[str], now: str) -> None:
    code, out = run_json(capsys, CHUTNEY_CONSENSUS, "--certs", CHUTNEY_CERTS, "--now", now)
    assert code == 0
    assert out["in_window"] is True
    assert out["now"].startswith("2020-08-07T") and out["now"].endswith("Z")


@pytest.mark.parametrize(
    ("now", "message"),
    [
        ("2020-08-07T12:43:21", "expired at 2020-08-07 12:43:20"),
        ("2020-08-07T12:42:39Z", "not valid until 2020-08-07 12:42:40"),
    ],
)
def test_now_outside_the_window(capsys: pytest.CaptureFixture[str], now: str, message: str) -> None:
    code, out, err = run_doc(capsys, CHUTNEY_CONSENSUS, "--certs", CHUTNEY_CERTS, "--now", now)
    assert code == doctool.EXIT_OUTSIDE_WINDOW
    assert err.count("\n") == 1 and err.startswith("gotor doc: outside its validity window: ")
    assert message in err
    assert re.search(r"^in window: +no$", out, re.MULTILINE)
    assert re.search(r"^verified: +yes$", out, re.MULTILINE)


def test_now_after_the_certificates_expired(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(
        capsys, CHUTNEY_CONSENSUS, "--certs", CHUTNEY_CERTS, "--now", "2026-11-22T10:00:00"
    )
    assert code == doctool.EXIT_NOT_VERIFIED  # expired keys: no quorum, and outside the window
    assert out["signatures"]["expired_key"] == 3 and out["quorum"] is False
    assert out["in_window"] is False
    assert len(out["problems"]) == 2


@pytest.mark.parametrize("now", ["yesterday", "2026-13-01T00:00:00", "", "2026-11-22T25:00"])
def test_bad_now_is_one_error_line(capsys: pytest.CaptureFixture[str], now: str) -> None:
    code, out, err = run_doc(capsys, CHUTNEY_CONSENSUS, "--now", now)
    assert_one_error_line(code, out, err, "bad --now")


# --- tampering ---------------------------------------------------------------


def altered(data: bytes, line_prefix: bytes) -> bytes:
    """``data`` with the last digit of the first line starting with ``line_prefix`` changed."""
    start = data.index(b"\n" + line_prefix) + 1
    end = data.index(b"\n", start)
    pos = max(i for i in range(start, end) if data[i : i + 1].isdigit())
    digit = (data[pos] - ord("0") + 1) % 10 + ord("0")
    return data[:pos] + bytes([digit]) + data[pos + 1 :]


@pytest.mark.parametrize("prefix", [b"r ", b"w ", b"valid-until ", b"bandwidth-weights "])
def test_an_altered_digit_fails_verification(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prefix: bytes
) -> None:
    path = tmp_path / "consensus"
    path.write_bytes(altered(CHUTNEY_CONSENSUS.read_bytes(), prefix))
    code, out = run_json(capsys, path, "--certs", CHUTNEY_CERTS)
    assert code == doctool.EXIT_NOT_VERIFIED
    assert out["signatures"]["invalid"] == 3 and out["signatures"]["valid"] == 0
    assert out["verified"] is False


def test_no_single_byte_change_in_the_signed_part_exits_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = CHUTNEY_CONSENSUS.read_bytes()
    signed_end = data.index(b"\ndirectory-signature ") + len(b"\ndirectory-signature ")
    path = tmp_path / "consensus"
    for pos in range(0, signed_end, signed_end // 60):
        new = ord("Z") if data[pos] != ord("Z") else ord("Y")
        path.write_bytes(data[:pos] + bytes([new]) + data[pos + 1 :])
        code, _, err = run_doc(capsys, path, "--certs", CHUTNEY_CERTS)
        assert code in (doctool.EXIT_ERROR, doctool.EXIT_NOT_VERIFIED), (pos, err)
        assert err.count("\n") == 1


# --- authority certificates ------------------------------------------------------


def test_authcerts_chutney(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, CHUTNEY_CERTS)
    assert code == 0
    assert COMMON_KEYS <= out.keys()
    assert (out["type"], out["certificates"], out["quorum"]) == ("authcert", 3, None)
    assert out["signatures"]["valid"] == 3 and out["signatures"]["invalid"] == 0
    # The window in which all three are valid.
    assert (out["valid_after"], out["valid_until"]) == (
        "2020-08-07T12:40:26Z",
        "2021-08-07T12:40:25Z",
    )
    assert all(c["verified"] for c in out["certs"])


def test_authcerts_shadow_fingerprints(capsys: pytest.CaptureFixture[str]) -> None:
    exp = expectations("testnet-shadow-set")["expected_from_our_recomputation"]["cached-certs"]
    code, out = run_json(capsys, SHADOW / "cached-certs")
    assert code == 0
    assert out["certificates"] == exp["n_certs"]
    assert [c["fingerprint"] for c in out["certs"]] == exp["fingerprints"]
    assert {(c["published"], c["expires"]) for c in out["certs"]} == {
        (iso(exp["published"]), iso(exp["expires"]))
    }


def test_authcerts_real_2010_to_2027(capsys: pytest.CaptureFixture[str]) -> None:
    path = DOCS / "authcerts/arti-authcert-all"
    code, out = run_json(capsys, path)
    assert code == 0
    assert (
        out["certificates"]
        == expectations("authcerts-2026")["expected_from_our_recomputation"]["n_certs"]
    )
    assert out["signatures"]["valid"] == 17
    assert (out["valid_after"], out["valid_until"]) == (None, None)  # never all valid at once
    now = 1795341600  # 2026-11-22T10:00:00Z
    outside = sum(
        1
        for u in parse_authcerts(path.read_bytes())
        if not u.validity.not_before <= now <= u.validity.not_after
    )
    code, out = run_json(capsys, path, "--now", "2026-11-22T10:00:00")
    assert code == doctool.EXIT_OUTSIDE_WINDOW
    assert outside > 0 and len(out["problems"]) == outside
    assert out["in_window"] is False and out["verified"] is True


def test_a_tampered_certificate_is_not_verified(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = CHUTNEY_CERTS.read_bytes()
    # A character in the middle of the first certificate's certification signature.
    obj = data.index(b"-----BEGIN SIGNATURE-----", data.index(b"dir-key-certification"))
    pos = obj + len(b"-----BEGIN SIGNATURE-----\n") + 20
    swap = b"B" if data[pos : pos + 1] != b"B" else b"C"
    path = tmp_path / "certs"
    path.write_bytes(data[:pos] + swap + data[pos + 1 :])
    code, out, err = run_doc(capsys, path, "--json")
    js = json.loads(out)
    assert code == doctool.EXIT_NOT_VERIFIED
    assert js["signatures"]["valid"] == 2 and js["signatures"]["invalid"] == 1
    assert [c["verified"] for c in js["certs"]] == [False, True, True]
    assert js["certs"][0]["fingerprint"] in err and "certification" in err
    # The same file given as --certs is an error, not a silently smaller trust set.
    code, out, err = run_doc(capsys, CHUTNEY_CONSENSUS, "--certs", path)
    assert_one_error_line(code, out, err, "certificate 1", "does not verify")


# --- microdescriptors ------------------------------------------------------------


def test_microdescs_shadow_match_the_consensus_m_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, SHADOW / "cached-microdescs.new")
    assert code == 0
    assert COMMON_KEYS <= out.keys()
    assert (out["type"], out["microdescriptors"]) == ("microdesc", 7)
    assert (out["signatures"], out["quorum"], out["valid_after"]) == (None, None, None)
    m_lines = [
        line.split()[1]
        for line in (SHADOW / "cached-microdesc-consensus").read_text().splitlines()
        if line.startswith("m ")
    ]
    assert sorted(out["digests"]) == sorted(m_lines)


# --- detection and explicit types -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "doc_type"),
    [
        (CHUTNEY_CONSENSUS, "consensus"),
        (SHADOW / "cached-consensus", "consensus"),
        (CHUTNEY_CERTS, "authcert"),
        (SHADOW / "cached-microdescs.new", "microdesc"),
    ],
)
def test_detected_type_equals_explicit_type(
    capsys: pytest.CaptureFixture[str], path: Path, doc_type: str
) -> None:
    _, detected = run_json(capsys, path)
    _, explicit = run_json(capsys, path, "--type", doc_type)
    assert detected["type"] == doc_type
    assert detected == explicit


def test_annotations_before_the_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    head = b"@type network-status-microdesc-consensus-3 1.0\n\n@downloaded-at 2020-08-07 12:43:00\n"
    path = tmp_path / "annotated"
    path.write_bytes(head + CHUTNEY_CONSENSUS.read_bytes())
    code, out = run_json(capsys, path, "--certs", CHUTNEY_CERTS)
    assert (code, out["type"], out["routers"], out["quorum"]) == (0, "consensus", 6, True)
    # Error line numbers count the annotation lines.
    lines = CHUTNEY_CONSENSUS.read_bytes().split(b"\n")
    lines[4] = b"fresh-until not a time"
    path.write_bytes(head + b"\n".join(lines))
    code, stdout, err = run_doc(capsys, path)
    assert_one_error_line(code, stdout, err, "line 8:")


# --- errors: one line, exit 1 ----------------------------------------------------


def write_bad_files(tmp: Path) -> None:
    (tmp / "empty").write_bytes(b"")
    (tmp / "blank").write_bytes(b"\n\n@type x 1.0\n")
    (tmp / "binary").write_bytes(bytes(range(256)) * 4)
    (tmp / "text").write_bytes(b"hello world\n")
    (tmp / "truncated").write_bytes(CHUTNEY_CONSENSUS.read_bytes()[:3000])


def error_cases(tmp: Path) -> dict[str, tuple[list[object], str]]:
    return {
        "missing file": ([tmp / "nope"], "No such file"),
        "directory": ([tmp], "Is a directory"),
        "empty file": ([tmp / "empty"], "empty document"),
        "only annotations": ([tmp / "blank"], "empty document"),
        "binary garbage": ([tmp / "binary"], "not a recognised directory document"),
        "unknown keyword": ([tmp / "text"], "'hello'"),
        "binary with --type": ([tmp / "binary", "--type", "consensus"], "not a valid consensus"),
        "truncated": ([tmp / "truncated"], "not a valid consensus"),
        "wrong type": ([CHUTNEY_CONSENSUS, "--type", "authcert"], "not a valid authcert"),
        "wrong type 2": ([CHUTNEY_CERTS, "--type", "microdesc"], "not a valid microdesc"),
        "certs missing": ([CHUTNEY_CONSENSUS, "--certs", tmp / "nope"], "certificate file"),
        "certs garbage": ([CHUTNEY_CONSENSUS, "--certs", tmp / "binary"], "certificate file"),
        "certs empty": ([CHUTNEY_CONSENSUS, "--certs", tmp / "empty"], "no certificates"),
        "certs not certs": ([CHUTNEY_CONSENSUS, "--certs", CHUTNEY_CONSENSUS], "certificate file"),
        "certs on authcert": ([CHUTNEY_CERTS, "--certs", CHUTNEY_CERTS], "--certs does not apply"),
        "onion on consensus": (
            [CHUTNEY_CONSENSUS, "--onion-address", "x.onion"],
            "--onion-address does not apply",
        ),
    }


ERROR_NAMES = list(error_cases(Path("/nonexistent")).keys())


@pytest.mark.parametrize("name", ERROR_NAMES)
@pytest.mark.parametrize("as_json", [False, True])
def test_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, as_json: bool
) -> None:
    write_bad_files(tmp_path)
    argv, fragment = error_cases(tmp_path)[name]
    code, out, err = run_doc(capsys, *argv, *(["--json"] if as_json else []))
    assert_one_error_line(code, out, err, fragment)


def test_oversized_file_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctool, "MAX_FILE_BYTES", 1000)
    code, out, err = run_doc(capsys, CHUTNEY_CONSENSUS)
    assert_one_error_line(code, out, err, "larger than")


def test_unknown_type_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["doc", str(CHUTNEY_CONSENSUS), "--type", "nonsense"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --- arbitrary input ------------------------------------------------------------

SEEDS = [
    CHUTNEY_CONSENSUS.read_bytes(),
    CHUTNEY_CERTS.read_bytes(),
    (SHADOW / "cached-microdescs.new").read_bytes(),
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.sampled_from(SEEDS),
    cuts=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=4)), max_size=3),
    noise=st.binary(max_size=64),
    use_noise=st.booleans(),
)
def test_any_input_gives_a_status_and_at_most_one_stderr_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    seed: bytes,
    cuts: list[tuple[int, bytes]],
    noise: bytes,
    use_noise: bool,
) -> None:
    data = noise if use_noise else seed
    for pos, replacement in cuts:
        pos %= len(data) + 1
        data = data[:pos] + replacement + data[pos + len(replacement) :]
    path = tmp_path / "doc"
    path.write_bytes(data)
    code, out, err = run_doc(capsys, path, "--json")
    assert code in (0, 1, 3, 4)
    assert err.count("\n") == (0 if code == 0 else 1)
    if code != 1:  # a summary was printed
        assert COMMON_KEYS <= json.loads(out).keys()
