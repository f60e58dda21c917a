"""store.secrets on its own, with known answers: which query parameter names carry
a credential (in any case), how a token and any fragment of it long enough to
matter are hidden (exactly at the fragment length and one short of it), the URL
of a request as stored and shown (written out whole), and the names of the
variables tokens live in. The canary tests (tests/test_secrets.py) check the
same things end to end."""

from __future__ import annotations

import pytest

from store.errors import ConfigError
from store.secrets import (
    env_name_problem, kind_of, looks_like_credential, public_url, query_pairs, redact, secret_from_env,
    secret_params, shown_env_name, shown_source_url,
)

TOKEN = "tok-3a5c7e9b1d2f4h6j"     # 20 characters
FRAGMENT = 8                       # a run of this many characters of a token is hidden too


@pytest.mark.parametrize("name", [
    "token", "TOKEN", "Token", "access_token", "ACCESS_TOKEN", "Access-Token", "pageToken", "PageToken",
    "X-Amz-Signature", "x-amz-signature", "X-AMZ-SIGNATURE", "sig", "SIG", "password", "PASSWD", "pwd",
    "client_secret", "CLIENT_SECRET", "Authorization", "HTTP_AUTHORIZATION", "auth", "sessionid", "SessionId",
    "session", "apikey", "APIKEY", "jwt", "bearer", "credential", "Credentials",
    "key", "KEY", "Key", "x-api-key", "X-API-KEY", "apiKey", "ApiKey", "API_KEY", "api.key", "access_code",
    "ACCESS_CODE", "code", "Code", "x-key", "amz_key", "private_key", "secret_key", "auth_code", "client_key",
    "app_key", "x-api-code", "my_token", "token_2",
])
def test_a_name_holding_a_credential_word_is_a_credential_in_any_case(name: str) -> None:
    assert looks_like_credential(name)
    assert secret_params(f"region=eu&{name}=v") == [name]


@pytest.mark.parametrize("name", [
    "key_id", "KEY_ID", "keyId", "country_code", "CountryCode", "zip_code", "x-foo-key", "foo_x_key",
    "my_key", "MyKey", "monkey", "keys", "codes", "tokens", "cursor", "region", "start", "api", "x", "",
    "-", "__", "api_key_id", "sigma", "authors", "passage",
])
def test_a_name_without_one_is_not(name: str) -> None:
    assert not looks_like_credential(name)


def test_query_pairs_split_at_both_separators_and_keep_empty_values() -> None:
    assert query_pairs("a=1&b=2;c=3") == [("a", "1"), ("b", "2"), ("c", "3")]
    assert query_pairs("token=&a=1") == [("token", ""), ("a", "1")]
    assert query_pairs("") == []
    assert secret_params("token=") == ["token"]               # an empty credential is still named
    assert secret_params("a=1;Token=x&token=y&TOKEN=z") == ["TOKEN", "Token", "token"]


def test_a_token_is_hidden_whole_and_wherever_it_appears() -> None:
    assert redact(f"Bearer {TOKEN} rejected; {TOKEN}", (TOKEN,)) == "Bearer *** rejected; ***"
    assert redact("nothing secret here", (TOKEN,)) == "nothing secret here"
    assert redact(f"a {TOKEN}", ("", TOKEN)) == "a ***"                  # an empty secret hides nothing
    assert redact("abc", ()) == "abc"
    assert redact("one sk-1 two pw-2", ("sk-1", "pw-2")) == "one *** two ***"


def test_a_fragment_of_the_fragment_length_is_hidden_and_one_shorter_is_not() -> None:
    eight, seven = TOKEN[4:4 + FRAGMENT], TOKEN[4:4 + FRAGMENT - 1]
    assert redact(f"cut: {eight}!", (TOKEN,)) == "cut: ***!"
    assert redact(f"cut: {seven}!", (TOKEN,)) == f"cut: {seven}!"
    # At the very start and at the very end of the text.
    assert redact(eight, (TOKEN,)) == "***"
    assert redact(f"{eight} then", (TOKEN,)) == "*** then"
    assert redact(f"ends with {TOKEN[-FRAGMENT:]}", (TOKEN,)) == "ends with ***"
    assert redact(f"ends with {TOKEN[-FRAGMENT + 1:]}", (TOKEN,)) == f"ends with {TOKEN[-FRAGMENT + 1:]}"
    # A longer run is hidden as one, up to where it stops matching.
    assert redact(f"[{TOKEN[2:15]}]", (TOKEN,)) == "[***]"
    assert redact(f"{TOKEN[:12]}{TOKEN[:12]}", (TOKEN,)) == "******"
    assert redact(f"x{TOKEN[3:11]}y{TOKEN[5:13]}z", (TOKEN,)) == "x***y***z"


def test_a_token_as_short_as_a_fragment_is_hidden_only_whole() -> None:
    short = "ab12cd34"                 # exactly the fragment length
    assert redact(f"[{short}] [{short[:7]}]", (short,)) == "[***] [ab12cd3]"
    nine = "ab12cd34e"                 # one longer: its fragments are hidden too
    assert redact(f"[{nine[:8]}] [{nine[1:]}] [{nine[:7]}]", (nine,)) == "[***] [***] [ab12cd3]"


def test_a_stored_url_keeps_what_is_public_and_nothing_else() -> None:
    assert public_url("https://api.example/v1/usage") == "https://api.example/v1/usage"
    assert public_url("https://user:pw@api.example/v1/usage?start=2022-01-01#frag") == \
        "https://api.example/v1/usage?start=2022-01-01"
    assert public_url("https://user@api.example/v1") == "https://api.example/v1"
    assert public_url("https://api.example/v1?api_key=k1&a=1", (("Token", "t1"), ("cursor", "c2"))) == \
        "https://api.example/v1?a=1&cursor=c2"
    assert public_url("https://api.example/v1", (("cursor", f"next-{TOKEN}"),), secrets=(TOKEN,)) == \
        "https://api.example/v1?cursor=next-***"
    assert public_url("https://api.example/v1?region=eu&a=1", masked=frozenset({"region"})) == \
        "https://api.example/v1?region=***&a=1"
    assert public_url(f"https://api.example/{TOKEN}/usage", secrets=(TOKEN,)) == "https://api.example/***/usage"
    # A path the secret is not encoded in stays as the server wrote it.
    assert public_url(f"https://api.example/a%20b/{TOKEN}", secrets=(TOKEN,)) == "https://api.example/a%20b/***"
    assert public_url("https://api.example/a%20b/x", secrets=("",)) == "https://api.example/a%20b/x"
    assert public_url("https://api.example/a%20b/x", secrets=(TOKEN,)) == "https://api.example/a%20b/x"
    # A secret the path percent-encodes is hidden whole, not left encoded (nor in pieces).
    assert public_url("https://api.example/v1/tok%2Ben%2Fabcdefgh/x", secrets=("tok+en/abcdefgh",)) == \
        "https://api.example/v1/***/x"


def test_a_source_url_shows_every_value_of_its_own_query_hidden() -> None:
    assert shown_source_url("https://usage.example.com/v1?region=eu-1&tenant=t9") == \
        "https://usage.example.com/v1?region=***&tenant=***"
    # Split at ';' the URL has one parameter, whose whole value is hidden.
    assert shown_source_url("https://usage.example.com/v1?region=eu;tenant=t9") == \
        "https://usage.example.com/v1?region=***"
    assert shown_source_url("https://usage.example.com/v1") == "https://usage.example.com/v1"


def test_the_name_of_a_token_variable_is_checked_and_a_pasted_token_never_quoted() -> None:
    assert env_name_problem("token_env", "X_BEARER_TOKEN") is None
    assert env_name_problem("token_env", "lower_case_ok") is None
    assert env_name_problem("token_env", "1ABC") == (
        "'token_env' must be the NAME of an environment variable (letters, digits, '_'), not the token itself")
    assert env_name_problem("user_env", "has space") == (
        "'user_env' must be the NAME of an environment variable (letters, digits, '_'), not the token itself")
    for pasted in ("ghp_abc123", "sk-abc", "AKIAIOSFODNN7EXAMPLE", "eyJhbGciOi", "xoxb-1", "AIzaSy", "ya29.x"):
        problem = env_name_problem("token_env", pasted)
        assert problem is not None and pasted not in problem
    assert env_name_problem("token_env", "ghp_abc123") == (
        "'token_env' looks like a token (it starts as well-known credentials do), not the NAME of an environment "
        "variable: put the token in a variable and name that variable here")


def test_a_variable_is_named_only_when_it_is_written_as_variables_are() -> None:
    assert shown_env_name("token_env", "X_BEARER_TOKEN") == "environment variable X_BEARER_TOKEN"
    hidden = "the environment variable token_env names (not shown: it is not written like one, in capitals)"
    assert shown_env_name("token_env", "x_bearer_token") == hidden
    assert shown_env_name("token_env", "AKIAIOSFODNN7EXAMPLE") == hidden


def test_a_secret_comes_from_the_variable_its_key_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert secret_from_env("s", "token_env", None) is None
    assert secret_from_env("s", "token_env", "") is None
    assert secret_from_env("s", "token_env", "MY_TOKEN", {"MY_TOKEN": "v1"}) == "v1"
    monkeypatch.setenv("MY_TOKEN", "from-the-process")
    assert secret_from_env("s", "token_env", "MY_TOKEN") == "from-the-process"
    with pytest.raises(ConfigError) as unset:
        secret_from_env("s", "token_env", "MY_TOKEN", {})
    assert str(unset.value) == ("source 's': environment variable MY_TOKEN is not set "
                                "(token_env names the variable that holds the token)")
    with pytest.raises(ConfigError) as empty:
        secret_from_env("s", "user_env", "MY_USER", {"MY_USER": ""})
    assert str(empty.value) == ("source 's': environment variable MY_USER is not set "
                                "(user_env names the variable that holds the user name)")
    # A name not written in capitals may be a token pasted in the wrong place: named by its key only.
    with pytest.raises(ConfigError) as unusual:
        secret_from_env("s", "token_env", "my_token", {})
    assert str(unusual.value) == ("source 's': the environment variable token_env names (not shown: it is not "
                                  "written like one, in capitals) is not set "
                                  "(token_env names the variable that holds the token)")
    with pytest.raises(ConfigError) as pasted:
        secret_from_env("s", "token_env", "ghp_abc123", {"ghp_abc123": "x"})
    assert "ghp_abc123" not in str(pasted.value) and str(pasted.value).startswith("source 's': 'token_env' looks like")


def test_a_value_is_named_by_its_toml_type_only() -> None:
    assert kind_of({1, 2}) == "set" and kind_of(object()) == "object"
