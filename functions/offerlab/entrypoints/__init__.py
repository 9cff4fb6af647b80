"""Cloud Functions declarations, one module per area, each function a few lines calling the service
layer. ``main.py`` re-exports them all (the Functions runtime discovers functions in ``main``).
Keeping each area in its own module keeps the declarations small and lets areas evolve separately."""
