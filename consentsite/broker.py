"""kombu's filesystem transport (the broker of `make run`), with each message written whole
before it appears: kombu's own creates the file and then writes it, so a worker polling the
folder can take an empty file and stop on it ("Unrecoverable error: JSONDecodeError")."""

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        # The name orders messages as kombu's does; the staging folder is on the same file
        # system, so the rename into the queue folder is atomic. Readers skip the folder.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staging = os.path.join(self.data_folder_out, ".staging")
        os.makedirs(staging, exist_ok=True)
        with open(os.path.join(staging, name), "wb") as file:
            file.write(str_to_bytes(dumps(payload)))
        os.replace(os.path.join(staging, name), os.path.join(self.data_folder_out, name))


class Transport(filesystem.Transport):
    Channel = Channel
