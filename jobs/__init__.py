"""The scheduled jobs and the long-lived service that runs them (APScheduler on asyncio)."""
