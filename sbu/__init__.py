"""The application around the domain: settings, the clock, the case store, email and the `sbu` command."""
