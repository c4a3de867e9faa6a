# SPDX-License-Identifier: MIT
"""A Flask app behind latch: every page but /login needs a logged-in user.

    LATCH_SOCKET=/run/latch/latchd.sock flask --app examples/flask/app.py run --cert adhoc

(The session cookie is Secure, __Host- prefixed: serve it over HTTPS, or
set cookie_name="sid" while trying it on http://localhost.)
"""

from flask import Flask, render_template_string

from latch.flask import Latch, current_session, current_user  # latch

app = Flask(__name__)
auth = Latch(app, service="demo")  # latch: adds /login (CSRF-protected) and /logout

PAGE = """<p>Hello {{ user }} (groups: {{ groups }})</p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<button>Log out</button></form>"""


@app.route("/")
@auth.login_required  # latch
def index():
    claims = current_session()["claims"]  # latch
    return render_template_string(PAGE, user=current_user(), groups=", ".join(claims.get("groups", [])),  # latch
                                  csrf=auth.csrf_token())  # latch
