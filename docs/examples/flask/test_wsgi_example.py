# A test of that project, unchanged: it runs on Flask, and on tether.
def test_hello(client):
    assert client.get("/hello?name=ann").json == {"greeting": "hello ann"}


def test_rows(client):
    assert client.get("/rows?n=3").data == b"row 0\nrow 1\nrow 2\n"
