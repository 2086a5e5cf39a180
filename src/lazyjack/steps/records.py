"""The shape of each step kind's journal record, checked when the journal is read.

A record holds all that its step's `revert` needs. The journal is read before a command
changes anything, and every record of a kind this lazyjack knows must have its fields, of
their types (an address that parses, base64 that decodes), so that a damaged journal stops
the command there with the file and the field named, instead of a KeyError half-way
through an undo. Fields a later lazyjack adds are allowed; a kind it adds is left alone.
"""

from __future__ import annotations

import base64
import binascii
from ipaddress import ip_address, ip_interface, ip_network
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict


def _address(text: str) -> str:
    ip_address(text)
    return text


def _interface(text: str) -> str:
    ip_interface(text)
    return text


def _network(text: str) -> str:
    ip_network(text)
    return text


def _base64(text: str) -> str:
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64 ({exc})") from None
    return text


Address = Annotated[str, AfterValidator(_address)]
Interface = Annotated[str, AfterValidator(_interface)]
Network = Annotated[str, AfterValidator(_network)]
Base64 = Annotated[str, AfterValidator(_base64)]


class StepRecord(BaseModel):
    """Any record: a summary at most (steps whose undo needs nothing, kinds of a newer lazyjack)."""

    model_config = ConfigDict(extra="allow", strict=True)

    summary: str = ""


class InterfaceRecord(StepRecord):
    interface: str


class AddressRecord(InterfaceRecord):
    address: Interface


class MtuRecord(InterfaceRecord):
    original: int
    mtu: int


class SysctlRecord(StepRecord):
    name: str
    original: str
    value: str


class RouteItem(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    destination: Network
    gateway: Address
    device: str | None = None


class RoutesRecord(StepRecord):
    routes: list[RouteItem]


class NameRecord(StepRecord):
    """A thing named, as a link or a network namespace."""

    name: str


class LinkRecord(StepRecord):
    link: str


class RulesRecord(StepRecord):
    rules: list[list[str]]


class CreatedDirs(StepRecord):
    created_dirs: list[str] = []


class FileRecord(CreatedDirs):
    path: str
    original: Base64 | None
    original_mode: int | None = None  # a secret's file that was there with another mode
    written: str
    backup: str | None = None
    backup_original: Base64 | None = None


class MarkedEditRecord(StepRecord):
    path: str
    existed: bool
    original: Base64 | None
    written: str
    backup: str | None = None
    backup_original: Base64 | None = None


class KubeconfigRecord(CreatedDirs):
    path: str
    original: Base64 | None
    # Whose it is (records of earlier versions have none: the owner of the home then says).
    user: str | None = None
    uid: int | None = None
    gid: int | None = None
    home: str | None = None
    created_dir: str | None = None  # records of earlier versions name one created directory


class NativeServerRecord(CreatedDirs):
    netns: str
    program: Literal["named", "unbound", "tayga"]
    directory: str


class EngineRecord(StepRecord):
    runtime: Literal["docker", "podman"]
    socket: str


class ContainerNetworkRecord(EngineRecord):
    network: str


class ContainerRecord(EngineRecord, CreatedDirs):
    name: str
    conf: str
