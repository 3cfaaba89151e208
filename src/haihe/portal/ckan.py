"""CKAN's shapes — the dictionaries CKAN 2.10 returns for packages, resources, organisations,
groups and tags, built from the portal's rows. Every key CKAN sends is present, null when the
portal has no value for it; ``extras`` is a list of ``{key, value}``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from haihe.catalogue.models import Resource
from haihe.orgs.models import Organisation
from haihe.portal.models import Dataset
from haihe.portal.topics import BY_NAME, LICENCE_BY_ID, Topic

CKAN_VERSION = "2.10.4"
_RESOURCE_NS = uuid.UUID("8b0c1f8e-3f0d-4b53-9a43-0d6f3c0a7e11")
MIMETYPES = {
    "CSV": "text/csv",
    "JSON": "application/json",
    "Parquet": "application/vnd.apache.parquet",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
OPEN_TYPE_ZH = {"unconditional": "无条件开放", "conditional": "有条件开放"}


def ckan_time(moment: dt.datetime | None) -> str | None:
    """CKAN's timestamp form: ISO 8601 in UTC without an offset, with microseconds."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def org_name(org: Organisation) -> str:
    """An organisation's CKAN name: its code in lower case."""
    return org.code.lower()


def resource_id(ds: Dataset, fmt: str) -> str:
    """The CKAN id of a dataset's resource in format ``fmt`` (the CSV one is the datastore's)."""
    if fmt == "CSV":
        return ds.resource_uuid
    return str(uuid.uuid5(_RESOURCE_NS, f"{ds.resource_uuid}:{fmt}"))


def organization_dict(
    org: Organisation, *, base_url: str, package_count: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(uuid.uuid5(_RESOURCE_NS, f"org:{org.id}")),
        "name": org_name(org),
        "title": org.name_zh,
        "display_name": org.name_zh,
        "description": org.name_en or "",
        "image_url": "",
        "image_display_url": "",
        "created": ckan_time(org.created_at),
        "is_organization": True,
        "approval_status": "approved",
        "state": "active" if org.active else "deleted",
        "type": "organization",
        "num_followers": 0,
        "extras": [{"key": "haihe_code", "value": org.code}],
    }
    if package_count is not None:
        out["package_count"] = package_count
    return out


def group_dict(topic: Topic, *, package_count: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(uuid.uuid5(_RESOURCE_NS, f"group:{topic.name}")),
        "name": topic.name,
        "title": topic.zh,
        "display_name": topic.zh,
        "description": topic.en,
        "image_url": "",
        "image_display_url": "",
        "created": None,
        "is_organization": False,
        "approval_status": "approved",
        "state": "active",
        "type": "group",
        "num_followers": 0,
        "extras": [{"key": "title_en", "value": topic.en}],
    }
    if package_count is not None:
        out["package_count"] = package_count
    return out


def tag_dict(tag: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(_RESOURCE_NS, f"tag:{tag}")),
        "name": tag,
        "display_name": tag,
        "state": "active",
        "vocabulary_id": None,
    }


def resource_dict(ds: Dataset, fmt: str, position: int, *, base_url: str) -> dict[str, Any]:
    rid = resource_id(ds, fmt)
    ext = fmt.lower()
    return {
        "id": rid,
        "package_id": ds.uuid,
        "name": f"{ds.title_zh} ({fmt})",
        "description": ds.title_en or "",
        "format": fmt,
        "mimetype": MIMETYPES.get(fmt),
        "mimetype_inner": None,
        "url": f"{base_url}/portal/dataset/{ds.name}/download.{ext}",
        "url_type": None,
        "datastore_active": fmt == "CSV",
        "size": ds.data_bytes if fmt == "Parquet" else None,
        "hash": "",
        "position": position,
        "state": "active",
        "resource_type": None,
        "created": ckan_time(ds.created_at),
        "last_modified": ckan_time(ds.data_updated_at),
        "metadata_modified": ckan_time(ds.modified_at),
        "cache_url": None,
        "cache_last_updated": None,
    }


def package_dict(
    ds: Dataset, *, org: Organisation, resource: Resource, base_url: str
) -> dict[str, Any]:
    """The CKAN package dict of a dataset."""
    licence = LICENCE_BY_ID.get(ds.licence_id)
    topic = BY_NAME.get(ds.topic)
    formats = [f for f in ds.formats.split(",") if f]
    tags = [t.tag for t in ds.tags]
    extras = {
        "open_type": ds.open_type.value,
        "open_type_zh": OPEN_TYPE_ZH.get(ds.open_type.value, ds.open_type.value),
        "update_frequency": ds.update_frequency.value,
        "catalogue_code": resource.code,
        "row_count": "" if ds.row_count is None else str(ds.row_count),
        "title_en": ds.title_en or "",
        "terms": ds.terms or "",
    }
    return {
        "id": ds.uuid,
        "name": ds.name,
        "title": ds.title_zh,
        "notes": ds.notes_zh,
        "type": "dataset",
        "state": "active" if ds.state.value == "active" else "deleted",
        "private": False,
        "isopen": bool(licence and licence.open and ds.open_type.value == "unconditional"),
        "license_id": ds.licence_id,
        "license_title": licence.title if licence else None,
        "license_url": (licence.url or None) if licence else None,
        "author": org.name_zh,
        "author_email": None,
        "maintainer": resource.steward_name,
        "maintainer_email": None,
        "url": f"{base_url}/portal/dataset/{ds.name}",
        "version": None if ds.data_version is None else str(ds.data_version),
        "creator_user_id": None,
        "owner_org": organization_dict(org, base_url=base_url)["id"],
        "organization": organization_dict(org, base_url=base_url),
        "metadata_created": ckan_time(ds.created_at),
        "metadata_modified": ckan_time(ds.modified_at),
        "num_resources": len(formats),
        "num_tags": len(tags),
        "tags": [tag_dict(t) for t in tags],
        "groups": [
            {
                k: g[k]
                for k in ("id", "name", "title", "display_name", "description", "image_display_url")
            }  # fmt: skip
            for g in ([group_dict(topic)] if topic else [])
        ],
        "resources": [
            resource_dict(ds, fmt, i, base_url=base_url) for i, fmt in enumerate(formats)
        ],
        "extras": [{"key": k, "value": v} for k, v in extras.items()],
        "relationships_as_object": [],
        "relationships_as_subject": [],
    }
