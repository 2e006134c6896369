"""The ground floor: settings, secrets, the database, migrations, logging, ids and errors.

Knows nothing of points, Discord or admins; everything else may import it.
"""
