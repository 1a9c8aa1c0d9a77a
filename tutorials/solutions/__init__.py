"""The instructor's solutions to the exercises, one module per lesson (`lesson1` ... `lesson6`).

Each function has the name of the exercise it solves. Students: try the exercise first; the
checks say what is wrong without giving the answer away.
"""
