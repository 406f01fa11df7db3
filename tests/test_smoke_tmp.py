import trio, pytest
from .helpers import evaluate, navigate, expect_load, NavigationError

async def test_page(page, site):
    await navigate(page, site.url("127.0.0.1", "/page?title=Hi"))
    assert await evaluate(page, "document.title") == "Hi"
    await navigate(page, site.url("localhost", "/login"))
    async with expect_load(page):
        await evaluate(page, "document.getElementById('user').value='bob'; document.getElementById('password').value='secret'; document.forms[0].submit()")
    assert "Logged in as bob" in await evaluate(page, "document.body.innerText")
    await navigate(page, site.https_url("127.0.0.2", "/frames"))
    print(await evaluate(page, "location.href"))

@pytest.mark.time_limit(1)
async def test_timeout():
    await trio.sleep(3)

async def test_plain():
    await trio.sleep(0)
