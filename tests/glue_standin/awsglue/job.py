"""Job stand-in: records init and commit so tests can check the job ran to its end."""


class Job:
    runs: list[dict] = []

    def __init__(self, glue_context) -> None:
        self.glue_context = glue_context

    def init(self, name: str, args: dict) -> None:
        self.record = {"name": name, "args": dict(args), "committed": False}
        Job.runs.append(self.record)

    def commit(self) -> None:
        self.record["committed"] = True
