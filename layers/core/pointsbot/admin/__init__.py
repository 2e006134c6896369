"""What the admin site does: sign-in and sessions, audited admin actions, bulk points,
the dashboard's figures and the monitors. The web layer itself is admin_site/."""
