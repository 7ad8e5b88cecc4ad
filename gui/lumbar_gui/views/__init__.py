"""The application's views: devices, live, assessment, biofeedback, review."""
