"""``tipwatch bot``: the Matrix bot, a long-running process of its own (compose service ``bot``)."""

from __future__ import annotations

import asyncio
import signal

from worker.cli.common import app, config_exit, console, engine, fail, line, load_settings


@app.command()
def bot() -> None:
    """Run the Matrix bot: join the rooms it is invited to and answer !subscribe, !list,
    !preview, !pause, !resume, !unsubscribe and !help there (TIPWATCH_MATRIX_* settings).
    Stops cleanly on SIGTERM or Ctrl-C; a restart resumes where it stopped."""
    from config.settings import ConfigError
    from worker.bot.matrix import BotError, MatrixBot
    from worker.logs import configure_logging

    settings = load_settings()
    configure_logging(settings)  # the bot's log is its record: INFO unless told otherwise
    problem = settings.matrix_problem()
    if problem is not None:
        raise config_exit(ConfigError(problem))
    matrix = MatrixBot(settings, engine(settings))
    if not settings.self_service_matrix:
        console.print(
            "self-service is off (TIPWATCH_SELF_SERVICE_MATRIX=false): the bot refuses new"
            " subscriptions"
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await matrix.run(stop)

    try:
        asyncio.run(main())
    except BotError as exc:
        raise fail(str(exc)) from exc
    console.print(line("matrix bot ", (matrix.me, "bold"), " stopped"))
