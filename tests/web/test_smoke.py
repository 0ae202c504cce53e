from factories import auth


def test_employee_lists_granted_seals(client, world):
    r = client.get("/api/v1/me/seals", headers=auth(world.a.tokens["employee"]))
    assert r.status_code == 200, r.text
    got = {(s["seal_id"], s["access"]) for s in r.json()}
    assert got == {(world.a.seals["contract"], "granted"),
                   (world.a.personal["employee"], "personal")}
