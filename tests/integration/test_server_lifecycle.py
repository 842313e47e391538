"""A server stopped right after it started exits cleanly: the fixtures wait until it handles
SIGTERM ("server ready"), not only until its ports answer."""


def test_stop_right_after_start_is_clean(make_roost):
    for _ in range(10):
        r = make_roost(users=())
        assert r.stop() == 0, r.log_text()[-2000:]
