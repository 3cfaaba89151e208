"""Topics — 主题 — of the topic libraries, and the classification codes built from them.

A resource's classification code (前段码) is ``1`` + its base library's two digits when it belongs
to a base library, else ``2`` + its topic's two digits, else ``3`` + its provider's code (the
department library). The resource code is the classification code, ``-``, and a six-digit sequence
(后段码): the guide writes ``101/000001``; Haihe uses ``-`` so codes are safe in URLs and paths.
"""

from __future__ import annotations

from haihe.catalogue.models import BaseLibrary

BASE_LIBRARIES: dict[BaseLibrary, tuple[str, str, str]] = {
    BaseLibrary.POPULATION: ("01", "人口", "Population"),
    BaseLibrary.LEGAL_ENTITY: ("02", "法人单位", "Legal entities"),
    BaseLibrary.GEOSPATIAL: ("03", "自然资源和空间地理", "Natural resources and geospatial"),
    BaseLibrary.SOCIAL_CREDIT: ("04", "社会信用", "Social credit"),
    BaseLibrary.E_LICENCE: ("05", "电子证照", "Electronic licences"),
}

# code: (Chinese, English). Twenty-one topics, as Tianjin's open portal has.
TOPICS: dict[str, tuple[str, str]] = {
    "01": ("社会保障", "Social security"),
    "02": ("医疗卫生", "Health care"),
    "03": ("民政服务", "Civil affairs"),
    "04": ("交通出行", "Transport"),
    "05": ("住房保障", "Housing"),
    "06": ("教育文化", "Education and culture"),
    "07": ("就业创业", "Employment"),
    "08": ("市场监管", "Market regulation"),
    "09": ("信用服务", "Credit"),
    "10": ("城乡建设", "Urban and rural construction"),
    "11": ("生态环境", "Environment"),
    "12": ("公共安全", "Public safety"),
    "13": ("社会治理", "Social governance"),
    "14": ("养老服务", "Elderly care"),
    "15": ("农业农村", "Agriculture and rural affairs"),
    "16": ("财税金融", "Finance and taxation"),
    "17": ("科技创新", "Science and innovation"),
    "18": ("文化旅游", "Culture and tourism"),
    "19": ("公共服务", "Public services"),
    "20": ("机构团体", "Organisations"),
    "21": ("经济发展", "Economy"),
}
TOPIC_BY_NAME: dict[str, str] = {
    name: code for code, names in TOPICS.items() for name in (names[0], names[1].lower())
}
BASE_LIBRARY_BY_NAME: dict[str, BaseLibrary] = {
    name: lib for lib, (_, zh, en) in BASE_LIBRARIES.items() for name in (zh, en.lower(), lib.value)
}


def classification_code(
    *, base_library: BaseLibrary | None, topic: str | None, provider_code: str
) -> str:
    """The classification code (前段码) of an entry: base library, else topic, else department."""
    if base_library is not None:
        return "1" + BASE_LIBRARIES[base_library][0]
    if topic is not None:
        return "2" + topic
    return "3" + provider_code


def resource_code(classification: str, sequence: int) -> str:
    return f"{classification}-{sequence:06d}"
