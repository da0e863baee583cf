"""``vibrasense gateway`` (MQTT in, scores and machine states out) and ``vibrasense simulate --mqtt``."""

from __future__ import annotations

import logging
import signal
import threading

import typer

from vibrasense.cli.common import console, settings
from vibrasense.errors import ConfigError

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the ``gateway`` and ``simulate`` commands."""
    app.command("gateway")(gateway)
    app.command("simulate")(simulate)


def gateway(
    host: str | None = typer.Option(None, help="MQTT broker host (gateway.host)."),
    port: int | None = typer.Option(None, help="MQTT broker port (gateway.port)."),
    site: str | None = typer.Option(None, help="Site to subscribe to, + for every site (gateway.site)."),
    client_id: str | None = typer.Option(None, help="Fixed MQTT client id of the session (gateway.client_id)."),
    metrics_port: int | None = typer.Option(None, help="Port of /metrics and /healthz, 0 for none."),
    embedded_broker: bool = typer.Option(
        False, help="Start an embedded broker (amqtt) at host:port when none answers there; for demos."
    ),
) -> None:
    """Score sensor snapshots from MQTT with the champion and publish each machine's state, retained.

    Subscribes (QoS 1, persistent session) to vibrasense/<site>/<machine_id>/<sensor>/{waveform,summary};
    publishes vibrasense/<site>/<machine_id>/status (retained) and vibrasense/<site>/dead-letter. Broker TLS
    and credentials come from gateway.* (the password from VIBRASENSE_GATEWAY__PASSWORD). Stops on SIGTERM or
    Ctrl-C, leaving its session at the broker: messages published meanwhile wait for the next start.
    """
    from vibrasense.features.threads import single_thread_environment

    single_thread_environment()
    from vibrasense.gateway import EmbeddedBroker, Gateway, broker_reachable, use_embedded
    from vibrasense.serving.model import load_registered_scorer
    from vibrasense.serving.service import ScoringService

    config = settings(
        gateway={"host": host, "port": port, "site": site, "client_id": client_id, "metrics_port": metrics_port}
    )
    broker = None
    if embedded_broker and not broker_reachable(config.gateway.host, config.gateway.port):
        broker = EmbeddedBroker(config.gateway.host, config.gateway.port).start()
        config = config.model_copy(update={"gateway": use_embedded(config.gateway)})
        console.print(f"embedded MQTT broker (amqtt, MQTT 3.1.1) on {config.gateway.host}:{config.gateway.port}")
    with console.status("loading the model from the registry"):
        service = ScoringService(config, load_registered_scorer(config)).start()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    running = Gateway(config, service).start()
    scorer = service.slot.require()
    where = f"{config.gateway.host}:{config.gateway.port}"
    health = f", /metrics and /healthz on port {config.gateway.metrics_port}" if config.gateway.metrics_port else ""
    console.print(
        f"gateway: scoring with [bold]{scorer.name}[/] v{scorer.version}, MQTT {where}{health}", highlight=False
    )
    try:
        stopping.wait()
    finally:
        running.stop()
        service.close()
        if broker is not None:
            broker.stop()


def simulate(
    mqtt: bool = typer.Option(False, "--mqtt", help="Publish to the MQTT broker of gateway.* (the only transport)."),
    site: str = typer.Option("plant-1", help="Site name, the second topic level."),
    machines: int = typer.Option(3, min=0, help="Sound machines <type>_id_NN (sensor mic)."),
    machine_type: str = typer.Option("pump", help="Type of the sound machines (pump, fan...)."),
    anomalous: list[str] = typer.Option(
        [],
        help="MACHINE=ANOMALY@SECONDS or MACHINE=ANOMALY@FROM-TO: the machine turns anomalous then (bearing, "
        "imbalance, rubbing, clogging) and, with TO, is repaired then.",
    ),
    off: list[str] = typer.Option([], help="MACHINE@SECONDS or MACHINE@FROM-TO: the machine is switched off."),
    bearings: int = typer.Option(0, min=0, help="Bearings bearing-NN running to failure over the simulation."),
    summary_only: int = typer.Option(0, min=0, help="Smart sensors smart-NN sending summaries only."),
    duration: float = typer.Option(60.0, min=0.001, help="Simulated seconds."),
    interval: float = typer.Option(1.0, min=0.001, help="Simulated seconds between two snapshots of a sensor."),
    snapshot: float = typer.Option(1.0, min=0.05, help="Seconds of signal per snapshot."),
    speed: float = typer.Option(1.0, min=0.0, help="Simulated seconds per real second; 0: as fast as possible."),
    encoding: str = typer.Option("binary", help="Waveform encoding: binary or json."),
    severity: float = typer.Option(2.0, min=0.0, help="Severity the anomalies grow to (1 subtle, 2 clear)."),
    ramp: float = typer.Option(20.0, min=0.0, help="Simulated seconds an anomaly takes to grow to its severity."),
    seed: int = typer.Option(7, help="Seed of the synthetic plant (the demo's is 7)."),
    embedded_broker: bool = typer.Option(False, help="Talk to the embedded broker (MQTT 3.1.1, a user name)."),
) -> None:
    """Publish a synthetic plant over MQTT, snapshot by snapshot, in real time or faster (--speed)."""
    from vibrasense.gateway import Plant, Scenario, publish, use_embedded
    from vibrasense.gateway.simulator import parse_anomaly, parse_off

    if not mqtt:
        raise ConfigError("simulate publishes over MQTT only: pass --mqtt")
    if encoding not in ("binary", "json"):
        raise ConfigError(f"--encoding {encoding!r}: use binary or json")
    scenario = Scenario(
        site=site,
        machine_type=machine_type,
        sound_machines=machines,
        bearings=bearings,
        summary_only=summary_only,
        interval_s=interval,
        snapshot_s=snapshot,
        duration_s=duration,
        anomalies=dict(parse_anomaly(text) for text in anomalous),
        off=dict(parse_off(text) for text in off),
        severity=severity,
        ramp_s=ramp,
        encoding=encoding,  # type: ignore[arg-type]
        seed=seed,
    )
    config = settings().gateway
    if embedded_broker:
        config = use_embedded(config)
    plant = Plant(scenario)
    console.print(
        f"publishing {scenario.messages()} messages of site {site} to {config.host}:{config.port} "
        f"({duration:g} simulated s at speed {speed:g})",
        highlight=False,
    )
    result = publish(config, plant, speed)
    console.print(f"published {result.messages} messages in {result.seconds:.1f} s", highlight=False)
