"""The portal's 21 topics — 主题 (CKAN groups), as on Tianjin's open platform — and licences."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """A topic: its CKAN group name, its Chinese and English titles."""

    name: str
    zh: str
    en: str


TOPICS: tuple[Topic, ...] = (
    Topic("economy", "经济建设", "Economic development"),
    Topic("environment", "资源环境", "Resources and environment"),
    Topic("education-science", "教育科技", "Education and science"),
    Topic("transport", "道路交通", "Roads and transport"),
    Topic("social-development", "社会发展", "Social development"),
    Topic("public-safety", "公共安全", "Public safety"),
    Topic("finance-tax", "财税金融", "Finance and tax"),
    Topic("credit", "信用服务", "Credit services"),
    Topic("health", "医疗卫生", "Health care"),
    Topic("social-security", "社保就业", "Social security and employment"),
    Topic("housing", "城建住房", "Urban construction and housing"),
    Topic("agriculture", "农业农村", "Agriculture and rural affairs"),
    Topic("organisations", "机构团体", "Institutions and associations"),
    Topic("culture-leisure", "文化休闲", "Culture and leisure"),
    Topic("life-services", "生活服务", "Everyday services"),
    Topic("weather", "气象服务", "Weather services"),
    Topic("legal-services", "法律服务", "Legal services"),
    Topic("work-safety", "安全生产", "Work safety"),
    Topic("market-regulation", "市场监管", "Market regulation"),
    Topic("social-assistance", "社会救助", "Social assistance"),
    Topic("other", "其他", "Other"),
)
BY_NAME: dict[str, Topic] = {t.name: t for t in TOPICS}


@dataclass(frozen=True)
class Licence:
    """A licence a dataset may carry (CKAN's license_id, title and URL)."""

    id: str
    title: str
    url: str
    open: bool


LICENCES: tuple[Licence, ...] = (
    Licence(
        "cc-by-4.0",
        "Creative Commons Attribution 4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        True,
    ),
    Licence(
        "cc-zero",
        "Creative Commons CCZero",
        "https://creativecommons.org/publicdomain/zero/1.0/",
        True,
    ),
    Licence(
        "odc-by",
        "Open Data Commons Attribution License",
        "https://opendatacommons.org/licenses/by/1-0/",
        True,
    ),
    Licence("haihe-terms", "有条件开放数据使用协议 (the dataset's own terms)", "", False),
)
LICENCE_BY_ID: dict[str, Licence] = {lic.id: lic for lic in LICENCES}
