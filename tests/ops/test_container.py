"""The container files, checked without a Docker engine: what can be read, is."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from crm.config import KNOWN_KEYS, load_settings

ROOT = Path(__file__).resolve().parents[2]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def tiny_yaml(text: str) -> Any:
    """The block-style subset compose.yaml uses: mappings, lists of scalars, comments, quotes."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if stripped.strip():
            lines.append((len(stripped) - len(stripped.lstrip()), stripped.strip()))

    def scalar(value: str) -> Any:
        value = value.strip()
        return value[1:-1] if value[:1] in "\"'" and value[-1:] == value[:1] else value

    def block(index: int, indent: int) -> tuple[Any, int]:
        if lines[index][1].startswith("- "):
            items = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
                items.append(scalar(lines[index][1][2:]))
                index += 1
            return items, index
        mapping: dict[str, Any] = {}
        while index < len(lines) and lines[index][0] == indent:
            key, _, value = lines[index][1].partition(":")
            index += 1
            if value.strip():
                mapping[key] = scalar(value)
            elif index < len(lines) and lines[index][0] > indent:
                mapping[key], index = block(index, lines[index][0])
            else:
                mapping[key] = None
        return mapping, index

    return block(0, 0)[0]


def makefile_install() -> list[str]:
    """The -r and -c files `make run` installs from."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if "pip install" in line and "requirements.txt" in line:
            return re.findall(r"-[rc] \S+", line)
    raise AssertionError("no runtime pip install in the Makefile")


def test_the_image_runs_as_a_non_root_user():
    users = [args for word, args in dockerfile() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    words = [word for word, _ in dockerfile()]
    assert words.index("USER") < words.index("CMD")


def test_it_installs_the_same_pinned_files_as_make_run_on_slim_python_311():
    steps = dockerfile()
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", next(args for word, args in steps if word == "FROM"))
    install = next(args for word, args in steps if word == "RUN" and "pip install" in args)
    assert (
        re.findall(r"-[rc] \S+", install)
        == makefile_install()
        == ["-r requirements.txt", "-c constraints.txt"]
    )
    copied = " ".join(args for word, args in steps if word == "COPY")
    assert "requirements.txt" in copied and "constraints.txt" in copied


def test_it_serves_8501_checks_healthz_and_keeps_the_cache_on_a_volume():
    steps = dockerfile()
    assert "8501" in next(args for word, args in steps if word == "EXPOSE").split()
    health = next(args for word, args in steps if word == "HEALTHCHECK")
    assert "http://127.0.0.1:8501/healthz" in health
    from ui.routes import ROUTES

    assert "/healthz" in {route.path for route in ROUTES}
    env = " ".join(args for word, args in steps if word == "ENV")
    db = re.search(r"CRM_DB=(\S+)", env).group(1)
    volumes = " ".join(args for word, args in steps if word == "VOLUME")
    assert str(Path(db).parent) in volumes
    cmd = shlex.split(next(args for word, args in steps if word == "CMD").strip("[]").replace(",", " "))
    assert cmd[:3] == ["streamlit", "run", "app.py"] and "--server.address=0.0.0.0" in cmd


def test_secrets_and_local_data_stay_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".streamlit/secrets.toml", ".env", "data", "*.db", ".venv", ".git"} <= ignored


def test_compose_takes_its_settings_from_an_env_file_and_keeps_the_cache_on_a_volume():
    compose = tiny_yaml((ROOT / "compose.yaml").read_text())
    service = compose["services"]["crm"]
    assert service["env_file"] == [".env"]
    assert any(v.endswith(":/data") for v in service["volumes"])
    assert compose["volumes"] == {"crm-data": None, "crm-pg": None}
    assert any(p.endswith(":8501") and p.startswith("127.0.0.1:") for p in service["ports"])


def test_the_postgres_profile_runs_two_replicas_on_one_postgresql_database():
    services = tiny_yaml((ROOT / "compose.yaml").read_text())["services"]
    replicas = [services["crm-pg-1"], services["crm-pg-2"]]
    assert services["postgres"]["profiles"] == ["postgres"] and "profiles" not in services["crm"]
    assert {r["environment"]["CRM_DB"] for r in replicas} == {
        "postgresql://crm:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}@postgres:5432/crm"
    }
    assert all(r["profiles"] == ["postgres"] and r["env_file"] == [".env"] for r in replicas)
    assert len({p for r in replicas for p in r["ports"]}) == 2
    assert all(r["depends_on"]["postgres"]["condition"] == "service_healthy" for r in replicas)


def test_env_example_names_only_real_settings_and_they_load():
    values = {}
    for line in (ROOT / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    unknown = {k for k in values if k not in KNOWN_KEYS and not k.startswith("STREAMLIT_")}
    assert not unknown
    filled = {k: v for k, v in values.items() if v and not k.startswith("STREAMLIT_")}
    assert load_settings(filled, {}).sync_interval_s == 900
