"""A job's document parsed in the isolated parser pool, with the job's own fields and its sealed
password opened only on the way into the parsing process."""

from rag.v1 import events_pb2
from services.common.config import IngestSettings
from services.ingest.document import DocumentError, ParsedDocument
from services.ingest.parsing.isolation import Limits, ParserPool
from services.ingest.parsing.options import options_from
from services.ingest.sealing import Sealer, SealError, load_key


class JobParser:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.pool = ParserPool(
            settings.parse_processes,
            Limits(settings.parse_cpu_seconds, settings.parse_wall_seconds, settings.parse_memory_bytes),
        )
        self._sealer: Sealer | None = None

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            self._sealer = Sealer(load_key(self.settings.upload_secret, self.settings.data_dir))
        return self._sealer

    async def parse(self, job: events_pb2.IngestJob, data: bytes) -> ParsedDocument:
        """DocumentError for anything about the document (it fails at once); ParserUnavailable for
        this installation's problems (the job is retried)."""
        try:
            password = self.sealer.open(job.sealed_password, job.tenant, job.doc_id, job.version)
        except SealError as exc:
            raise DocumentError(str(exc)) from exc
        options = options_from(
            self.settings,
            content_type=job.content_type,
            source_name=job.source_name,
            title=job.title,
            password=password,
        )
        return await self.pool.parse(data, options)

    def close(self) -> None:
        self.pool.close()
