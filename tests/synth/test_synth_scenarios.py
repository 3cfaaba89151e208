"""The data the five scenarios and supervision need is there, and the ground truth agrees."""

from __future__ import annotations

from synth_city import AS_OF


def _one(sql, query, *params):
    return sql.execute(query, list(params)).fetchone()


def test_death_registers_overlap_imperfectly(sql):
    rows = dict(
        sql.execute(
            "SELECT (in_death_certificates::INT * 2 + in_cremations::INT), count(*) "
            "FROM truth_persons WHERE NOT alive GROUP BY 1"
        ).fetchall()
    )
    both, cert_only, crem_only, neither = rows.get(3, 0), rows.get(2, 0), rows.get(1, 0), rows[0]
    dead = both + cert_only + crem_only + neither
    assert both > 0.75 * dead
    assert cert_only > 0
    assert crem_only > 0
    assert neither > 0
    living = _one(
        sql,
        "SELECT count(*) FROM truth_persons WHERE alive AND "
        "(in_death_certificates OR in_cremations)",
    )[0]
    assert living == 0


def test_register_rows_belong_to_dead_persons_with_the_right_dates(sql):
    for view in ("WJW_death_certificates", "MZ_cremations"):
        matched, wrong = _one(
            sql,
            f"SELECT count(*), count(*) FILTER (p.alive OR d.death_date <> p.death_date) "
            f"FROM {view} d JOIN truth_persons p USING (id_number)",
        )
        assert matched > 0
        assert wrong == 0


def test_household_register_cancels_some_dead_but_not_all(sql):
    cancelled, dead_active = _one(
        sql,
        "SELECT count(*) FILTER (g.status = '死亡注销'), "
        "count(*) FILTER (g.status = '正常' AND NOT p.alive) "
        "FROM GA_household_registration g JOIN truth_persons p USING (id_number)",
    )
    assert cancelled > 0
    assert dead_active > 0


def test_some_pensioners_are_dead_but_still_paid_with_overpayments(sql):
    still_paid = sql.execute(
        "SELECT overpaid_months, monthly_amount, overpayment, status FROM truth_pensions "
        "WHERE NOT alive AND still_paid_after_death"
    ).fetchall()
    assert still_paid
    assert all(m > 0 and amount * m == over for m, amount, over, _ in still_paid)
    assert any(status == "正常发放" for *_, status in still_paid)
    last = _one(sql, "SELECT max(paid_through) FROM RS_pension_recipients")[0]
    assert last < AS_OF
    # Dead pensioners whose death reached no register are never stopped.
    unknown = _one(
        sql,
        "SELECT count(*) FROM truth_pensions t JOIN truth_persons p USING (person_id) "
        "WHERE NOT p.alive AND NOT p.in_death_certificates AND NOT p.in_cremations "
        "AND p.hukou_status <> '死亡注销' AND t.status = '终止发放'",
    )[0]
    assert unknown == 0


def test_pensioner_share_and_pensioners_living_in_other_provinces(sql):
    share = _one(sql, "SELECT avg(pensioner::INT) FROM truth_persons WHERE alive")[0]
    assert 0.19 <= share <= 0.27
    elsewhere = sql.execute(
        "SELECT residence_region FROM RS_pension_recipients WHERE residence_region IS NOT NULL"
    ).fetchall()
    assert elsewhere
    assert all(not r.startswith("12") for (r,) in elsewhere)
    alive_elsewhere = _one(
        sql, "SELECT count(*) FROM truth_pensions WHERE alive AND lives_elsewhere"
    )
    assert alive_elsewhere[0] > 0


def test_elderly_bus_cards_held_by_the_dead_and_used_after_death(sql):
    revoke = dict(
        sql.execute(
            "SELECT reason, count(*) FROM truth_bus_cards WHERE should_revoke GROUP BY 1"
        ).fetchall()
    )
    assert revoke.get("holder_dead", 0) > 0
    assert "" not in revoke
    misused = _one(
        sql,
        "SELECT count(*) FROM JT_transit_taps t JOIN truth_bus_cards c USING (card_no) "
        "JOIN truth_persons p USING (person_id) WHERE c.used_after_death "
        "AND t.tapped_at::DATE >= p.death_date",
    )[0]
    assert misused > 0
    honest = _one(
        sql,
        "SELECT count(*) FROM JT_transit_taps t JOIN truth_bus_cards c USING (card_no) "
        "JOIN truth_persons p USING (person_id) WHERE NOT c.used_after_death "
        "AND t.tapped_at::DATE >= p.death_date",
    )[0]
    assert honest == 0


def test_no_medical_visit_or_check_up_after_death(sql):
    for view, day in (
        ("WJW_medical_visits", "visit_date"),
        ("WJW_health_checkups", "checkup_date"),
    ):
        after = _one(
            sql,
            f"SELECT count(*) FROM {view} v JOIN truth_persons p USING (id_number) "
            f"WHERE NOT p.alive AND v.{day} > p.death_date",
        )[0]
        assert after == 0


def test_evidence_of_life_sources_cover_the_living(sql):
    sources = {
        "WJW_medical_visits": "id_number",
        "JT_transit_taps": "id_number",
        "ZLS_water_payments": "id_number",
        "DL_electricity_payments": "id_number",
        "DX_mobile_subscriptions": "id_number",
        "RS_pension_insurance": "id_number",
        "YB_medical_insurance": "id_number",
        "GJJ_accounts": "id_number",
    }
    union = " UNION ".join(f"SELECT {col} AS id_number FROM {v}" for v, col in sources.items())
    covered = _one(
        sql,
        f"SELECT avg((id_number IN ({union}))::INT) FROM truth_persons WHERE alive AND age >= 60",
    )[0]
    assert covered > 0.9


def test_unlicensed_trips_are_flagged_and_match_the_licence_registers(sql):
    share = _one(sql, "SELECT avg(unlicensed::INT) FROM truth_trips")[0]
    assert 0.05 < share < 0.4
    checked, mismatched = _one(
        sql,
        """
        WITH drivers AS (
            SELECT p.person_id, max(l.expires_on) AS expires FROM JT_ride_hailing_driver_licences l
            JOIN truth_persons p USING (id_number) GROUP BY 1),
        vehicles AS (SELECT plate, max(expires_on) AS expires
                     FROM JT_ride_hailing_vehicle_licences GROUP BY 1),
        dirty AS (SELECT person_id FROM truth_dirty_rows
                  WHERE dataset = 'JT.ride_hailing_driver_licences')
        SELECT count(*), count(*) FILTER (
            x.driver_licensed <> coalesce(t.departed_at::DATE < d.expires, false)
            OR x.vehicle_licensed <> coalesce(t.departed_at::DATE < v.expires, false)
            OR x.unlicensed <> NOT (x.driver_licensed AND x.vehicle_licensed))
        FROM JT_ride_hailing_trips t JOIN truth_trips x USING (order_no)
        LEFT JOIN drivers d ON d.person_id = x.driver_person_id
        LEFT JOIN vehicles v ON v.plate = t.plate
        WHERE x.driver_person_id NOT IN (SELECT person_id FROM dirty)
        """,
    )
    assert checked > 0.9 * _one(sql, "SELECT count(*) FROM truth_trips")[0]
    assert mismatched == 0
    coords = _one(
        sql,
        "SELECT min(origin_lat), max(origin_lat), min(origin_lng), max(origin_lng) "
        "FROM JT_ride_hailing_trips",
    )
    assert 38.5 < coords[0] < coords[1] < 40.5
    assert 116.5 < coords[2] < coords[3] < 118.5


def test_low_income_housing_fund_applications_have_ground_truth(sql):
    rows = dict(
        sql.execute(
            "SELECT reason, count(*) FROM truth_housing_fund_applications GROUP BY 1"
        ).fetchall()
    )
    assert rows.get("eligible", 0) > 0
    assert rows.get("not_low_income", 0) > 0
    wrong = _one(
        sql,
        "SELECT count(*) FROM truth_housing_fund_applications a JOIN truth_persons p "
        "USING (person_id) WHERE a.eligible AND NOT (p.alive AND p.low_income)",
    )[0]
    assert wrong == 0


def test_social_security_outreach_targets_exist(sql):
    targets = _one(
        sql,
        "SELECT count(*) FROM truth_persons WHERE needs_outreach AND hardship AND alive "
        "AND NOT pension_insured AND age BETWEEN 16 AND 59",
    )[0]
    assert targets > 0
    enrolled_targets = _one(
        sql,
        "SELECT count(*) FROM truth_persons p JOIN RS_pension_insurance r USING (id_number) "
        "WHERE p.needs_outreach",
    )[0]
    assert enrolled_targets == 0
    households = _one(
        sql, "SELECT count(*) FROM truth_households WHERE members_needing_outreach > 0"
    )
    assert households[0] > 0
