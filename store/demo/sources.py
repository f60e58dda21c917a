"""``http-json`` configurations of every shape the demo endpoint serves, as the
TOML a platform team would write: the three generic shapes (the README's worked
examples) and the four built-in vendors expressed without their adapters.

Each is a :class:`string.Template` with ``$name`` (the source's name), ``$url``
(the demo's base URL), ``$token_env`` and ``$limit`` (a page size), so tests
and ``warden demo`` fill them in; :func:`http_json_config` gives the text of a
whole ``[sources]`` file.
"""

from __future__ import annotations

from string import Template

from store.demo.vendors import PLAN

# The three shapes of store.demo.shapes.
STRIPE = Template('''
[sources.$name]
adapter = "http-json"
url = "$url"
token_env = "$token_env"                  # auth = "bearer" when token_env is set
path = "stripe/v1/usage_records"
params = { "created[gte]" = "{start_epoch}", "created[lt]" = "{end_epoch}", limit = "$limit" }
rows = "data"
app = "subscription_item"
day = "timestamp"                         # epoch seconds, read as a UTC day
metrics = { calls = "usage.calls", records = "usage.records" }
paginate = "cursor"
next = "data[-1].id"                      # the next page starts after the last object
cursor_param = "starting_after"
more = "has_more"
''')

GITHUB = Template('''
[sources.$name]
adapter = "http-json"
url = "$url"
auth = "basic"                            # user from user_env, password from token_env
user_env = "GITHUB_USER"
token_env = "$token_env"
path = "github/v3/usage"
params = { since = "{start}", until = "{end}", per_page = "$limit" }
window_days = 92
rows = "@"                                # the page is the list
app = "app_id"
day = "day"
metrics = { calls = "calls", records = "records" }
paginate = "link"                         # Link: <...>; rel="next"
''')

OFFSET = Template('''
[sources.$name]
adapter = "http-json"
url = "$url"
auth = "header:X-Api-Key"
token_env = "$token_env"
path = "offset/v1/usage"
params = { from = "{start}", to = "{end}", limit = "$limit" }
rows = "items"
each = "metrics"                          # one figure per item of each row's list ...
app = "^app"                              # ... so the app and the day are the row's (^)
day = "^date"
metric = "name"
value = "value"
paginate = "offset"
offset_param = "offset"
page_size = $limit
total = "total"
''')

# The four built-in vendors, as http-json.
X_USAGE = Template('''
[sources.$name]
adapter = "http-json"
url = "$url"
token_env = "$token_env"
path = "2/usage/tweets"
params = { days = "{days}", "usage.fields" = "daily_client_app_usage" }
last_days = $limit                        # X gives the last N days counted back from today
rows = "data.daily_client_app_usage"
each = "usage"                            # per app, its daily usage
app = "^client_app_id"
day = "date"
metrics = { records = "usage" }
''')

AWS_USAGE_PLAN = Template('''
[sources.$name]
adapter = "http-json"
url = "$url"
token_env = "$token_env"
path = "usageplans/PLAN/usage"
params = { startDate = "{start}", endDate = "{end}", limit = "$limit" }
rows = "values"                           # an object: its entries, {"key": key id, "value": pairs}
each = "value"                            # [used, remaining], one pair per day ...
days_from = "$$.startDate"                 # ... from the page's startDate
app = "^key"
metrics = { calls = "[0]" }
paginate = "cursor"
next = "position"
cursor_param = "position"
'''.replace("PLAN", PLAN))

OPENAI_USAGE = Template('''
[sources.$name]
adapter = "http-json"
url = "$url"
auth = "query:api_key"                    # the token as a query parameter (never stored nor shown)
token_env = "$token_env"
path = "v1/organization/usage/completions"
params = { start_time = "{start_epoch}", end_time = "{end_epoch}", bucket_width = "1d", group_by = "api_key_id", limit = "$limit" }
rows = "data"
each = "results"
app = "api_key_id"
day = "^start_time"                       # the bucket's
metrics = { calls = "num_model_requests", input_tokens = "input_tokens", output_tokens = "output_tokens" }
paginate = "cursor"
next = "next_page"
cursor_param = "page"
more = "has_more"
''')

WARDEN_FEED = Template('''
[sources.$name]
adapter = "http-json"
url = "$url/feed/v1"
token_env = "$token_env"
path = "usage"
params = { start = "{start}", end = "{end}", limit = "$limit" }
rows = "rows"                             # [app, day, metric, value]
app = "[0]"
day = "[1]"
metric = "[2]"
value = "[3]"
paginate = "cursor"
next = "next"
cursor_param = "cursor"
''')

SHAPES: dict[str, Template] = {"stripe": STRIPE, "github": GITHUB, "offset": OFFSET}
VENDORS: dict[str, Template] = {"x-usage": X_USAGE, "aws-usage-plan": AWS_USAGE_PLAN,
                                "openai-usage": OPENAI_USAGE, "warden-feed": WARDEN_FEED}


def http_json_config(template: Template, *, name: str, url: str, token_env: str, limit: int) -> str:
    """The TOML of one ``http-json`` source of the demo."""
    return template.substitute(name=name, url=url.rstrip("/"), token_env=token_env, limit=limit)
