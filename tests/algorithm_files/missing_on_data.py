"""Has no on_data method."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}
