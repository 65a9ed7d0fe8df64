from django.urls import reverse


def test_login_page_renders(client, db):
    """The login page is served to anonymous users."""
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in" in response.content
