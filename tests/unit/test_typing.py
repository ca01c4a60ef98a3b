"""@app.task keeps the function's signature: mypy rejects wrongly typed enqueues."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SNIPPET = textwrap.dedent(
    """
    import pgjobs

    app = pgjobs.App()

    @app.task(queue="emails", max_attempts=5)
    def send_welcome(user_id: int) -> None: ...

    @app.task
    async def resize(image_id: int, width: int = 800) -> dict[str, int]:
        return {}

    good: int | None = send_welcome.enqueue(42)
    send_welcome.options(delay=5, fingerprint="u42").enqueue(user_id=42)
    resize.enqueue(1, width=20)
    send_welcome.enqueue("x")  # line 16: wrong type
    resize.enqueue(1, height=3)  # line 17: unknown keyword
    send_welcome.options(queue="q").enqueue()  # line 18: missing argument
    """
)


@pytest.mark.slow  # runs mypy, about 5 s
def test_mypy_rejects_wrong_enqueue_arguments(tmp_path: Path):
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == [16, 17, 18], result.stdout
