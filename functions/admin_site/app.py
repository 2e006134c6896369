"""The admin site (server-rendered pages under /admin): its Lambda entry point.

The site is the admin_site package, shipped beside this file (admin_site here is a link SAM's
Python builder copies, like the layer's pointsbot_sql), so in Lambda it is imported as the
package it is everywhere else.
"""

from __future__ import annotations

from admin_site import app as site

lambda_handler = site.lambda_handler
