"""Vehicles (GA) and ride-hailing (JT): driver and vehicle licences, and a month of trips.

Some drivers carry passengers without a driver's licence (网约车驾驶员证), in a car without a
transport licence (网约车运输证), or after a licence expired — illegal ride-hailing (非法网约车).
``truth/trips`` flags every such trip; trips carry coordinates and times for heat maps.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from haihe.synth.arrays import (
    DAY_SECONDS,
    Bools,
    Ints,
    categorical,
    coords,
    dates,
    make_distinct,
    money,
    padded_strings,
    pick,
    ragged_strings,
    timestamps,
    weighted_choice,
    with_nulls,
)
from haihe.synth.context import Context
from haihe.synth.dirt import Dirt, id_column, name_column
from haihe.synth.economy import LEASING, PLATFORM_SHORT, PLATFORMS
from haihe.synth.geo import KM_PER_LAT, KM_PER_LNG, random_points

CITY_LETTERS = b"ABCDEFGHJKLMNQR"
PLATE_LETTERS = b"ABCDEFGHJKLMNPQRSTUVWXYZ"
PLATE_TYPES = ("小型汽车号牌", "小型新能源汽车号牌", "大型汽车号牌")
VEHICLE_TYPES = ("小型轿车", "小型普通客车", "轻型普通货车", "重型半挂牵引车")
USE_TYPES = ("非营运", "预约出租客运", "出租客运", "货运")
BRANDS = (
    "大众",
    "丰田",
    "比亚迪",
    "本田",
    "日产",
    "吉利",
    "长城",
    "奥迪",
    "宝马",
    "奔驰",
    "别克",
    "长安",
    "特斯拉",
    "理想",
    "红旗",
    "奇瑞",
    "现代",
    "福特",
)
COLOURS = ("白", "黑", "银", "灰", "红", "蓝")
VEHICLE_STATUSES = ("正常", "逾期未检验", "注销")
LICENCE_STATUSES = ("有效", "已过期", "注销")
TRIP_DAYS = 30
HOURLY = (2, 1.5, 1, 0.6, 0.5, 1, 3, 8, 10, 7, 5, 5, 6, 5, 5, 6, 7, 10, 10, 8, 6, 5, 4, 3)
VEHICLES_PER_PERSON = 0.27
OWNER_DIRT = Dirt(id_legacy=0.003, id_typo=0.001, id_format=0.001, name_typo=0.002)
TRIP_DIRT = Dirt(id_typo=0.0005, id_format=0.0005)


def plates(rng: np.random.Generator, count: int, nev_share: float) -> tuple[pa.Array, Bools]:
    """Return ``count`` distinct plates (津A12345, 津AB1234, 津AD12345) and which are NEV."""
    nev = rng.random(count) < nev_share
    city = np.frombuffer(CITY_LETTERS, np.uint8)
    letters = np.frombuffer(PLATE_LETTERS, np.uint8)

    def draw(rows: Ints) -> np.ndarray:
        m = rows.size
        out = rng.integers(48, 58, (m, 7)).astype(np.uint8)
        out[:, 0] = city[rng.integers(0, city.size, m)]
        is_nev = nev[rows]
        with_letter = ~is_nev & (rng.random(m) < 0.3)
        at = rng.integers(1, 3, m)
        out[with_letter, at[with_letter]] = letters[rng.integers(0, letters.size, m)][with_letter]
        out[is_nev, 1] = np.where(rng.random(int(is_nev.sum())) < 0.8, ord("D"), ord("F"))
        out[~is_nev, 6] = 0
        return out

    def key(matrix: np.ndarray) -> Ints:
        packed = np.zeros(matrix.shape[0], np.int64)
        for col in range(7):
            packed = (packed << 7) | matrix[:, col].astype(np.int64)
        return packed

    ascii_part = draw(np.arange(count))

    def redraw(rows: Ints) -> Ints:
        ascii_part[rows] = draw(rows)
        return key(ascii_part[rows])

    make_distinct(key(ascii_part), redraw)
    head = np.frombuffer("津".encode(), np.uint8)
    matrix = np.hstack([np.broadcast_to(head, (count, 3)), ascii_part])
    return ragged_strings(matrix, np.where(nev, 10, 9)), nev


def _select_drivers(ctx: Context, rng: np.random.Generator) -> Ints:
    pop = ctx.pop
    candidates = np.flatnonzero(~pop.dead & ~pop.away & (pop.age >= 22) & (pop.age <= 60))
    count = min(candidates.size, max(30, round(len(pop) * 0.004)))
    weight = np.where(pop.sex[candidates] == 1, 9.0, 1.0)
    chosen = rng.choice(candidates, count, replace=False, p=weight / weight.sum())
    return np.sort(chosen)


def _licence_dates(
    rng: np.random.Generator, today: int, count: int, expired: Bools
) -> tuple[Ints, Ints]:
    issued = today - rng.integers(30, 6 * 365, count)
    expires = np.where(expired, today - rng.integers(1, TRIP_DAYS * 2, count), issued + 6 * 365)
    expires = np.where(~expired & (expires <= today), today + rng.integers(30, 900, count), expires)
    return issued, expires


def write_vehicles_and_ride_hailing(ctx: Context) -> None:
    """Write vehicles (GA), ride-hailing licences and trips (JT), and ``truth/trips``."""
    pop, rng = ctx.pop, ctx.rng("ride_hailing")
    drivers = _select_drivers(ctx, rng)
    d = drivers.size
    driver_licensed = rng.random(d) < 0.85
    driver_expired = driver_licensed & (rng.random(d) < 0.06)
    leased = rng.random(d) < 0.3
    owner_company = np.where(leased, rng.integers(0, len(LEASING), d) + len(PLATFORMS), -1)
    vehicle_licensed = rng.random(d) < np.where(driver_licensed, 0.92, 0.2)
    vehicle_expired = vehicle_licensed & (rng.random(d) < 0.05)
    plate_of_driver = _write_vehicles(ctx, drivers, owner_company, vehicle_licensed)

    # Licences: the active drivers' plus some of people who hold one but do not drive now.
    idle = np.flatnonzero(~pop.dead & ~pop.away & (pop.age >= 22) & (pop.age <= 60))
    idle = np.setdiff1d(rng.choice(idle, min(idle.size, d // 4 + 1), replace=False), drivers)
    holders = np.concatenate([drivers[driver_licensed], idle])
    expired = np.concatenate([driver_expired[driver_licensed], rng.random(idle.size) < 0.1])
    issued, expires = _licence_dates(rng, ctx.today, holders.size, expired)
    order = np.argsort(issued, kind="stable")
    holders, issued, expires, expired = (
        holders[order],
        issued[order],
        expires[order],
        expired[order],
    )
    dataset = "JT.ride_hailing_driver_licences"
    platform = weighted_choice(rng, (0.45, 0.25, 0.15, 0.1, 0.05), d)
    ctx.emit(
        dataset,
        {
            "licence_no": padded_strings(np.arange(1, holders.size + 1), 10, "WJ"),
            "id_number": id_column(rng, pop, holders, OWNER_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, holders, OWNER_DIRT.name_typo, ctx.log, dataset),
            "sex": ctx.sex_column(holders),
            "issued_on": dates(issued),
            "expires_on": dates(expires),
            "status": categorical(expired.astype(np.int64), LICENCE_STATUSES),
        },
    )
    driver_expiry = np.full(d, -1, np.int64)
    pos = np.searchsorted(drivers, holders)
    is_driver = (pos < d) & (drivers[np.minimum(pos, d - 1)] == holders)
    driver_expiry[pos[is_driver]] = expires[is_driver]

    lic = np.flatnonzero(vehicle_licensed)
    v_issued, v_expires = _licence_dates(rng, ctx.today, lic.size, vehicle_expired[lic])
    owner_name = pa.concat_arrays(
        [pick(ctx.enterprise_name, np.maximum(owner_company[lic], 0)), pop.names(drivers[lic])]
    ).take(pa.array(np.where(leased[lic], np.arange(lic.size), lic.size + np.arange(lic.size))))
    ctx.emit(
        "JT.ride_hailing_vehicle_licences",
        {
            "licence_no": padded_strings(np.arange(1, lic.size + 1), 10, "WY"),
            "plate": pick(plate_of_driver, lic),
            "owner_name": owner_name,
            "owner_uscc": with_nulls(
                pick(ctx.enterprise_uscc, np.maximum(owner_company[lic], 0)), ~leased[lic]
            ),
            "issued_on": dates(v_issued),
            "expires_on": dates(v_expires),
            "status": categorical(vehicle_expired[lic].astype(np.int64), LICENCE_STATUSES),
        },
    )
    vehicle_expiry = np.full(d, -1, np.int64)
    vehicle_expiry[lic] = v_expires
    _write_trips(ctx, drivers, platform, plate_of_driver, driver_expiry, vehicle_expiry)


def _write_vehicles(
    ctx: Context, drivers: Ints, company_of_driver: Ints, licensed: Bools
) -> pa.Array:
    """Write every vehicle (GA); return the plate each driver drives.

    Rows: cars of private owners, the drivers' own cars, company cars, the drivers' leased cars —
    so the personal owners come first and their rows need no renumbering in the dirt log.
    """
    pop, rng, dataset = ctx.pop, ctx.rng("vehicles"), "GA.vehicles"
    n = len(pop)
    d = drivers.size
    leased = company_of_driver >= 0
    total = max(d + 10, round(n * VEHICLES_PER_PERSON))
    private = total - d
    n_company = int((rng.random(private) < 0.1).sum())
    weight = np.where((pop.age >= 20) & (pop.age <= 85) & ~pop.away, 1.0, 0.0)
    weight *= np.exp(-(((pop.age - 42) / 18.0) ** 2))
    owners = np.sort(rng.choice(n, private - n_company, p=weight / weight.sum()))
    first_free = len(PLATFORMS) + len(LEASING)
    companies = first_free + rng.integers(0, len(ctx.enterprise_uscc) - first_free, n_company)
    person = np.concatenate([owners, drivers[~leased]])
    company = np.concatenate([companies, company_of_driver[leased]])
    p, c = person.size, company.size
    k = p + c
    driver_row = np.empty(d, np.int64)
    driver_row[~leased] = owners.size + np.arange(int((~leased).sum()))
    driver_row[leased] = p + n_company + np.arange(int(leased.sum()))
    plate, nev = plates(rng, k, 0.18)
    truck = (np.arange(k) >= p) & (np.arange(k) < p + n_company) & (rng.random(k) < 0.3)
    use = np.where(truck, 3, 0)
    use[driver_row] = np.where(licensed, 1, 0)
    registered = ctx.today - rng.integers(10, 15 * 365, k)
    inspected = np.where(ctx.today - registered >= 6 * 365, ctx.today - rng.integers(1, 730, k), -1)
    small = (rng.random(k) < 0.2).astype(np.int64)
    ctx.emit(
        dataset,
        {
            "plate": plate,
            "plate_type": categorical(np.where(nev, 1, np.where(truck, 2, 0)), PLATE_TYPES),
            "owner_type": categorical((np.arange(k) >= p).astype(np.int64), ("个人", "单位")),
            "owner_id_number": pa.concat_arrays(
                [
                    id_column(rng, pop, person, OWNER_DIRT, ctx.log, dataset, "owner_id_number"),
                    pa.nulls(c, pa.string()),
                ]
            ),
            "owner_uscc": pa.concat_arrays(
                [pa.nulls(p, pa.string()), pick(ctx.enterprise_uscc, company)]
            ),
            "owner_name": pa.concat_arrays(
                [
                    name_column(
                        rng, pop, person, OWNER_DIRT.name_typo, ctx.log, dataset, "owner_name"
                    ),
                    pick(ctx.enterprise_name, company),
                ]
            ),
            "vehicle_type": categorical(
                np.where(truck, 2 + (rng.random(k) < 0.4), small), VEHICLE_TYPES
            ),
            "use_type": categorical(use, USE_TYPES),
            "brand": categorical(rng.integers(0, len(BRANDS), k), BRANDS),
            "color": categorical(weighted_choice(rng, (35, 25, 15, 12, 7, 6), k), COLOURS),
            "registered_on": dates(registered),
            "last_inspection_on": dates(np.maximum(inspected, 0), inspected < 0),
            "status": categorical(weighted_choice(rng, (0.92, 0.06, 0.02), k), VEHICLE_STATUSES),
        },
    )
    return pick(plate, driver_row)


def _write_trips(
    ctx: Context,
    drivers: Ints,
    platform: Ints,
    plate_of_driver: pa.Array,
    driver_expiry: Ints,
    vehicle_expiry: Ints,
) -> None:
    pop, rng, dataset = ctx.pop, ctx.rng("trips"), "JT.ride_hailing_trips"
    d = drivers.size
    part_time = np.where((driver_expiry < 0) | (vehicle_expiry < 0), 0.5, 1.0)
    counts = rng.poisson(rng.gamma(1.2, 100.0, d) * part_time)
    who = np.repeat(np.arange(d), counts)
    k = who.size
    day = ctx.today - TRIP_DAYS + rng.integers(0, TRIP_DAYS, k)
    depart = day * DAY_SECONDS + weighted_choice(rng, HOURLY, k) * 3600 + rng.integers(0, 3600, k)
    order = np.argsort(depart, kind="stable")
    who, depart = who[order], depart[order]
    urban = np.array([w for w in ctx.city.communities.weight])
    district = ctx.city.community_district()
    urban = urban * np.where(district < 6, 4.0, 1.0)
    origin_comm = weighted_choice(rng, urban, k)
    o_lat, o_lng = random_points(rng, ctx.city.communities.bbox, origin_comm)
    km = np.clip(rng.lognormal(np.log(7.5), 0.6, k), 1.0, 60.0)
    angle = rng.uniform(0, 2 * np.pi, k)
    d_lat = o_lat + km / 1.3 * np.sin(angle) / KM_PER_LAT
    d_lng = o_lng + km / 1.3 * np.cos(angle) / KM_PER_LNG
    minutes = km / rng.uniform(18, 32, k) * 60 + 2
    arrive = depart + np.rint(minutes * 60).astype(np.int64)
    fare = np.rint((1_000 + 200 * km + 50 * minutes) / 10) * 10
    depart_day = depart // DAY_SECONDS
    driver_ok = depart_day < driver_expiry[who]
    vehicle_ok = depart_day < vehicle_expiry[who]
    persons = drivers[who]
    platform_uscc = pick(ctx.enterprise_uscc, np.arange(len(PLATFORMS)))
    order_no = padded_strings(np.arange(1, k + 1), 14, "RH")
    ctx.emit(
        dataset,
        {
            "order_no": order_no,
            "platform": categorical(platform[who], PLATFORM_SHORT),
            "platform_uscc": categorical(platform[who], platform_uscc),
            "driver_id_number": id_column(
                rng, pop, persons, TRIP_DIRT, ctx.log, dataset, "driver_id_number"
            ),
            "plate": pick(plate_of_driver, who),
            "departed_at": timestamps(depart),
            "arrived_at": timestamps(arrive),
            "origin_lat": coords(o_lat, 6),
            "origin_lng": coords(o_lng, 6),
            "dest_lat": coords(d_lat, 6),
            "dest_lng": coords(d_lng, 6),
            "distance_km": coords(km, 2),
            "fare": money(fare),
        },
    )
    ctx.writer.truth(
        "trips",
        pa.table(
            {
                "order_no": order_no,
                "driver_person_id": pa.array(persons + 1),
                "driver_licensed": pa.array(driver_ok),
                "vehicle_licensed": pa.array(vehicle_ok),
                "unlicensed": pa.array(~(driver_ok & vehicle_ok)),
            }
        ),
        "Every ride-hailing trip: whether the driver and the vehicle held a valid licence at "
        "departure; unlicensed = either did not (illegal ride-hailing).",
    )
