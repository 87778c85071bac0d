"""Recipes: whole runs that tie the layers below together (load data, train, measure, save)."""
