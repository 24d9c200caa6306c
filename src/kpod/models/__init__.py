"""Loading students, predictors and teachers; building small local models."""
