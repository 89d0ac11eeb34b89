import pytest
from tests.test_web_e2e import world, test_sign_up_confirm_digest_unsubscribe_then_no_digest as flow  # noqa
import publisher.web.actions as actions

def test_noop_unsubscribe(world, monkeypatch):
    monkeypatch.setattr(actions, "unsubscribe", lambda *a: False)
    with pytest.raises(AssertionError) as e:
        flow(world)
    print("NOOP ->", str(e.value).splitlines()[0])

def test_get_unsubscribes(world, monkeypatch):
    real = actions.status
    def status(ctx, sid, lst):
        actions.unsubscribe(ctx, sid, lst)  # a GET that changes things
        return real(ctx, sid, lst)
    import publisher.web.unsubscribe as u
    monkeypatch.setattr(u.actions, "status", status)
    with pytest.raises(AssertionError) as e:
        flow(world)
    print("GET ->", str(e.value).splitlines()[0])

def test_confirm_on_get(world, monkeypatch):
    import publisher.web.confirm as c
    real = c._checked
    def checked(ctx, request):
        r = real(ctx, request); actions.activate(ctx, r[0], r[1]); return r
    monkeypatch.setattr(c, "_checked", checked)
    with pytest.raises(AssertionError) as e:
        flow(world)
    print("CONFIRM GET ->", str(e.value).splitlines()[0])
