"""A generated data set in exactly the Instacart Market Basket Analysis layout.

Files and columns are those of the Kaggle release (orders.csv, order_products__prior.csv,
order_products__train.csv, products.csv, aisles.csv, departments.csv, sample_submission.csv);
the 21 departments and 134 aisles carry the real names. `scale` is the number of users.

The shopper model, chosen so that the baselines the literature compares against have something
to find:
- every user has a personal set of staples with per-user weights, and a share of each basket
  drawn from them (so personal top-frequency beats global popularity);
- some staples are only "in season" for part of the user's history (slow drift);
- the rest of a basket follows a global Zipf popularity;
- products come in small bundles inside an aisle, and an item often pulls a bundle-mate into
  the same basket (co-purchase);
- `reordered` is derived, never drawn: 1 iff the user bought the product in an earlier order.
Everything is vectorised over draws; the only loops are over aisles when naming products.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from raydemand.data.synth import register_generator

MAX_PRODUCTS = 49688  # the real catalogue size

DEPARTMENTS = ["frozen", "other", "bakery", "produce", "alcohol", "international", "beverages", "pets",
               "dry goods pasta", "bulk", "personal care", "meat seafood", "pantry", "breakfast",
               "canned goods", "dairy eggs", "household", "babies", "snacks", "deli", "missing"]

# aisle_id order | department_id | items that name products of the aisle.
AISLES = """\
prepared soups salads|20|Chicken Noodle Soup;Caesar Salad;Lentil Soup
specialty cheeses|16|Aged Gouda;Brie;Manchego
energy granola bars|19|Chewy Granola Bar;Protein Bar;Nut Bar
instant foods|9|Ramen Noodles;Mac & Cheese Cup;Instant Oatmeal
marinades meat preparation|13|Teriyaki Marinade;BBQ Rub;Steak Sauce
other|2|Gift Card;Reusable Bag
packaged meat|12|Sliced Turkey;Pork Chops;Beef Jerky
bakery desserts|3|Chocolate Cake;Apple Pie;Cupcakes
pasta sauce|9|Marinara Sauce;Tomato Basil Sauce;Alfredo Sauce
kitchen supplies|17|Aluminum Foil;Parchment Paper;Zipper Bags
cold flu allergy|11|Cough Drops;Allergy Tablets;Vapor Rub
fresh pasta|20|Cheese Ravioli;Fettuccine;Tortellini
prepared meals|20|Chicken Pot Pie;Lasagna;Burrito Bowl
tofu meat alternatives|20|Extra Firm Tofu;Veggie Burger;Tempeh
packaged seafood|12|Smoked Salmon;Cooked Shrimp;Crab Meat
fresh herbs|4|Cilantro;Basil;Italian Parsley
baking ingredients|13|All-Purpose Flour;Baking Soda;Brown Sugar
bulk dried fruits vegetables|10|Dried Mango;Dried Cranberries;Banana Chips
oils vinegars|13|Extra Virgin Olive Oil;Balsamic Vinegar;Avocado Oil
oral hygiene|11|Toothpaste;Mouthwash;Dental Floss
packaged cheese|16|Shredded Mozzarella;Sharp Cheddar;String Cheese
hair care|11|Shampoo;Conditioner;Hair Gel
popcorn jerky|19|Microwave Popcorn;Kettle Corn;Turkey Jerky
fresh fruits|4|Banana;Strawberries;Hass Avocado;Lemon
soap|11|Hand Soap;Bar Soap;Foaming Hand Wash
coffee|7|Ground Coffee;Whole Bean Coffee;Cold Brew
beers coolers|5|IPA;Lager;Hard Seltzer
red wines|5|Cabernet Sauvignon;Pinot Noir;Merlot
honeys syrups nectars|13|Raw Honey;Maple Syrup;Agave Nectar
latino foods|6|Salsa Verde;Refried Beans;Taco Shells
refrigerated|7|Orange Juice;Kombucha;Almond Milk
packaged produce|4|Baby Spinach;Spring Mix;Baby Carrots
kosher foods|6|Matzo;Gefilte Fish;Challah
frozen meat seafood|1|Frozen Shrimp;Chicken Breasts;Salmon Fillets
poultry counter|12|Boneless Skinless Chicken Breast;Chicken Thighs;Ground Turkey
butter|16|Unsalted Butter;Salted Butter;Ghee
ice cream ice|1|Vanilla Ice Cream;Gelato;Ice Cubes
frozen meals|1|Chicken Enchiladas;Pad Thai;Mac and Cheese
seafood counter|12|Wild Salmon;Cod Fillet;Sea Scallops
dog food care|8|Dry Dog Food;Dog Treats;Wet Dog Food
cat food care|8|Dry Cat Food;Cat Litter;Wet Cat Food
frozen vegan vegetarian|1|Veggie Burgers;Meatless Crumbles;Falafel
buns rolls|3|Hamburger Buns;Dinner Rolls;Hot Dog Buns
eye ear care|11|Eye Drops;Contact Solution;Ear Drops
candy chocolate|19|Dark Chocolate Bar;Gummy Bears;Peanut Butter Cups
mint gum|19|Spearmint Gum;Peppermints;Sugar Free Gum
vitamins supplements|11|Multivitamin;Vitamin D3;Fish Oil
breakfast bars pastries|14|Toaster Pastries;Breakfast Bars;Soft Baked Bars
packaged poultry|12|Chicken Drumsticks;Rotisserie Chicken;Chicken Sausage
fruit vegetable snacks|19|Fruit Snacks;Apple Chips;Veggie Straws
preserved dips spreads|15|Hummus;Artichoke Dip;Bean Dip
frozen breakfast|1|Waffles;Breakfast Burritos;Pancakes
cream|16|Half & Half;Heavy Whipping Cream;Sour Cream
paper goods|17|Paper Towels;Toilet Paper;Facial Tissues
shave needs|11|Razors;Shave Gel;Aftershave
diapers wipes|18|Diapers Size 4;Baby Wipes;Training Pants
granola|14|Honey Almond Granola;Maple Pecan Granola;Grain Free Granola
frozen breads doughs|1|Pizza Dough;Garlic Bread;Croissant Dough
canned meals beans|15|Black Beans;Chickpeas;Chili with Beans
trash bags liners|17|Tall Kitchen Trash Bags;Lawn Bags;Compost Bags
cookies cakes|19|Chocolate Sandwich Cookies;Chocolate Chip Cookies;Shortbread
white wines|5|Sauvignon Blanc;Chardonnay;Pinot Grigio
grains rice dried goods|9|Jasmine Rice;Quinoa;Brown Rice
energy sports drinks|7|Sports Drink;Energy Drink;Electrolyte Water
protein meal replacements|11|Protein Powder;Meal Replacement Shake;Protein Shake
asian foods|6|Soy Sauce;Sriracha;Coconut Milk
fresh dips tapenades|20|Guacamole;Fresh Salsa;Olive Tapenade
bulk grains rice dried goods|10|Bulk Oats;Bulk Lentils;Bulk Basmati Rice
soup broth bouillon|15|Chicken Broth;Vegetable Stock;Bouillon Cubes
digestion|11|Antacid;Probiotic;Fiber Supplement
refrigerated pudding desserts|16|Chocolate Pudding;Rice Pudding;Flan
condiments|13|Ketchup;Yellow Mustard;Mayonnaise
facial care|11|Facial Cleanser;Face Moisturizer;Makeup Remover Wipes
dish detergents|17|Dish Soap;Dishwasher Pods;Rinse Aid
laundry|17|Laundry Detergent;Fabric Softener;Dryer Sheets
indian foods|6|Tikka Masala Sauce;Naan;Mango Chutney
soft drinks|7|Cola;Ginger Ale;Lemon Lime Soda
crackers|19|Whole Wheat Crackers;Rice Crackers;Cheese Crackers
frozen pizza|1|12" Thin Crust Pizza;Pepperoni Pizza;Margherita Pizza
deodorants|11|Deodorant;Antiperspirant
canned jarred vegetables|15|Diced Tomatoes;Sweet Corn;Green Beans
baby accessories|18|Baby Bottle;Pacifier;Teething Ring
fresh vegetables|4|Yellow Onion;Cucumber;Broccoli Crown;Red Bell Pepper
milk|16|Whole Milk;2% Reduced Fat Milk;Fat Free Milk
food storage|17|Food Storage Containers;Sandwich Bags;Plastic Wrap
eggs|16|Large Brown Eggs;Cage Free Eggs;Egg Whites
more household|17|Light Bulbs;AA Batteries;Matches
spreads|13|Creamy Peanut Butter;Strawberry Jam;Almond Butter
salad dressing toppings|13|Ranch Dressing;Croutons;Caesar Dressing
cocoa drink mixes|7|Hot Cocoa Mix;Chocolate Milk Mix;Lemonade Mix
soy lactosefree|16|Soy Milk;Lactose Free Milk;Oat Milk
baby food formula|18|Infant Formula;Baby Food Pouch;Puffs
breakfast bakery|3|Bagels;English Muffins;Blueberry Muffins
tea|7|Green Tea;Chamomile Tea;Robust Golden Unsweetened Oolong Tea
canned meat seafood|15|Chunk Light Tuna;Canned Salmon;Sardines
lunch meat|20|Oven Roasted Turkey Breast;Black Forest Ham;Genoa Salami
baking supplies decor|13|Sprinkles;Cupcake Liners;Food Coloring
juice nectars|7|Apple Juice;Cranberry Juice Cocktail;Coconut Water
canned fruit applesauce|15|Applesauce;Mandarin Oranges;Sliced Peaches
missing|21|Assorted Item;Seasonal Item
air fresheners candles|17|Scented Candle;Air Freshener Spray;Plug-in Refill
baby bath body care|18|Baby Shampoo;Baby Lotion;Diaper Cream
ice cream toppings|19|Chocolate Syrup;Whipped Topping;Caramel Sauce
spices seasonings|13|All-Seasons Salt;Ground Black Pepper;Garlic Powder
doughs gelatins bake mixes|13|Brownie Mix;Pancake Mix;Gelatin Dessert
hot dogs bacon sausage|12|Uncured Bacon;Beef Hot Dogs;Italian Sausage
chips pretzels|19|Sea Salt Potato Chips;Tortilla Chips;Pretzel Twists
other creams cheeses|16|Cream Cheese;Cottage Cheese;Ricotta
skin care|11|Body Lotion;Sunscreen SPF 30;Lip Balm
pickled goods olives|13|Kalamata Olives;Dill Pickles;Capers
plates bowls cups flatware|17|Paper Plates;Plastic Cups;Disposable Forks
bread|3|100% Whole Wheat Bread;Sourdough Bread;Multigrain Bread
frozen juice|1|Frozen Orange Juice Concentrate;Frozen Lemonade
cleaning products|17|All-Purpose Cleaner;Disinfecting Wipes;Glass Cleaner
water seltzer sparkling water|7|Sparkling Water;Spring Water;Lime Seltzer
frozen produce|1|Frozen Blueberries;Frozen Broccoli;Frozen Peas
nuts seeds dried fruit|19|Raw Almonds;Cashews;Trail Raisins
first aid|11|Adhesive Bandages;Antibiotic Ointment;Pain Reliever
frozen dessert|1|Ice Cream Sandwiches;Fruit Bars;Frozen Yogurt
yogurt|16|Greek Yogurt;Vanilla Yogurt;Strawberry Yogurt
cereal|14|Honey Nut Cereal;Corn Flakes;Granola Cereal
meat counter|12|Ground Beef 85%;Ribeye Steak;Pork Tenderloin
packaged vegetables fruits|4|Baby Kale;Grape Tomatoes;Blueberries
spirits|5|Vodka;Bourbon Whiskey;Silver Tequila
trail mix snack mix|19|Trail Mix;Snack Mix;Nut Cluster Mix
feminine care|11|Tampons;Pads;Panty Liners
body lotions soap|11|Body Wash;Moisturizing Lotion;Shea Butter Soap
tortillas flat bread|3|Flour Tortillas;Corn Tortillas;Pita Bread
frozen appetizers sides|1|Potstickers;Mozzarella Sticks;French Fries
hot cereal pancake mixes|14|Steel Cut Oats;Buttermilk Pancake Mix;Grits
dry pasta|9|Spaghetti;Penne Rigate;Elbow Macaroni
beauty|11|Nail Polish Remover;Mascara;Cotton Rounds
muscles joints pain relief|11|Ibuprofen Tablets;Pain Relief Patch;Muscle Rub
specialty wines champagnes|5|Prosecco;Champagne;Rose Wine
"""
BRANDS = ["Sunny Acres", "Green Valley", "Bay Harbor", "Old Mill", "Blue Ridge", "Golden Hearth",
          "Maple Grove", "North Coast", "Simple Harvest", "Little Farm", "Riverbend", "Hillside",
          "Urban Pantry", "Copper Kettle", "Wild Meadow", "Harvest Moon"]
MODIFIERS = ["Organic", "Original", "Classic", "Natural", "Premium", "Select", "Everyday", "Family Size"]
SIZES = [", 12 oz", ", 16 oz", ", 32 oz", ", 64 oz", ", 2 Pack", ", 6 Pack", ", Value Size"]
# "00".."23" and "", "0.0".."30.0": the real files' spelling of hours and day gaps.
HOURS = np.array([f"{h:02d}" for h in range(24)], dtype=object)
DAY_GAPS = np.array([""] + [f"{d}.0" for d in range(31)], dtype=object)


@dataclass(frozen=True)
class Shoppers:
    """Knobs of the shopper model. Defaults come close to the real data's marginals: orders per
    user ~16 (real 16.6), lines per order ~9.5 (10.1), reorder rate ~0.45-0.5 (0.59)."""

    orders_geometric_p: float = 1 / 13.5  # orders per user = 3 + Geometric(p), capped at 100
    mean_basket: float = 12.5  # drawn items per order, 1..50; ~10 lines once repeats merge
    staple_mean: float = 16.0  # size of a user's staple set
    staple_share: tuple[float, float] = (7.0, 3.0)  # Beta prior of the share of draws from staples
    staple_focus: float = 0.6  # staples are picked with popularity ** focus (1 = as popular, 0 = uniform)
    seasonal: float = 0.4  # fraction of staples active only for part of a user's history (drift)
    zipf: float = 1.0  # global popularity ~ 1 / (rank + 3) ** zipf
    bundle_size: int = 4  # products per co-purchase bundle, inside one aisle
    bundle_pull: float = 0.3  # chance that an item is replaced by a bundle-mate of the item before it
    train_share: float = 2 / 3  # the last order is 'train' (with lines) or 'test' (without)


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start offset of each segment, position of each element inside its segment)."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return starts, np.arange(int(counts.sum())) - np.repeat(starts, counts)


def _first_of_key(keys: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each key (in array order)."""
    first = np.zeros(keys.size, dtype=bool)
    first[np.unique(keys, return_index=True)[1]] = True
    return first


def _catalogue(rng: np.random.Generator, n_products: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """products.csv and aisles.csv; aisles get uneven sizes, as in the real catalogue."""
    rows = [line.split("|") for line in AISLES.splitlines()]
    aisles = pd.DataFrame({"aisle_id": np.arange(1, len(rows) + 1), "aisle": [r[0] for r in rows]})
    aisle_dept = np.array([int(r[1]) for r in rows])
    aisle_w = rng.gamma(1.2, size=len(rows))
    aisle = rng.choice(len(rows), size=n_products, p=aisle_w / aisle_w.sum())
    item_pick = rng.integers(0, 1 << 30, n_products)
    items = np.empty(n_products, dtype=object)
    for a, r in enumerate(rows):
        names = r[2].split(";")
        members = np.flatnonzero(aisle == a)
        items[members] = np.array(names, dtype=object)[item_pick[members] % len(names)]

    def some(words: list[str], chance: float, sep: str = " ") -> np.ndarray:
        picked = np.array([w + sep for w in words], dtype=object)[rng.integers(0, len(words), n_products)]
        return np.where(rng.random(n_products) < chance, picked, "")

    name = some(BRANDS, 0.6) + some(MODIFIERS, 0.5) + items + some(SIZES, 0.4, sep="")
    products = pd.DataFrame({"product_id": np.arange(1, n_products + 1), "product_name": name,
                             "aisle_id": aisle + 1, "department_id": aisle_dept[aisle]})
    return products, aisles


def _bundle_mates(rng: np.random.Generator, aisle: np.ndarray, size: int):
    """A function product -> a random other product of its bundle (bundles: `size` products of one aisle)."""
    order = np.lexsort((rng.random(aisle.size), aisle))  # products grouped by aisle, shuffled inside
    _, pos = _segments(np.bincount(aisle[order]))
    bundle_start = np.empty(aisle.size, dtype=np.int64)
    bundle_len = np.empty(aisle.size, dtype=np.int64)
    aisle_len = np.bincount(aisle)[aisle[order]]
    start_in_aisle = pos - pos % size
    bundle_start[order] = np.arange(aisle.size) - pos + start_in_aisle
    bundle_len[order] = np.minimum(size, aisle_len - start_in_aisle)
    where = np.empty(aisle.size, dtype=np.int64)
    where[order] = np.arange(aisle.size)

    def mate(products: np.ndarray) -> np.ndarray:
        length = bundle_len[products]
        step = 1 + rng.integers(0, 1 << 30, products.size) % np.maximum(length - 1, 1)
        offset = (where[products] - bundle_start[products] + step) % length
        return order[bundle_start[products] + offset]

    return mate


def _orders(rng: np.random.Generator, n_users: int, m: Shoppers) -> pd.DataFrame:
    """One row per order, sorted by user and order number (as orders.csv is)."""
    n_orders = np.minimum(100, 3 + rng.geometric(m.orders_geometric_p, n_users))
    starts, within = _segments(n_orders)
    user = np.repeat(np.arange(n_users), n_orders)
    cadence = 1 + rng.gamma(2.0, 5.5, n_users)
    gap = np.minimum(30, np.rint(rng.gamma(1.5, cadence[user] / 1.5))).astype(np.int64)
    gap[starts] = 0
    elapsed = np.cumsum(gap) - np.repeat(np.cumsum(gap)[starts], n_orders)
    dow = (rng.integers(0, 7, n_users)[user] + elapsed) % 7
    hour = np.clip(np.rint(rng.normal(13.5, 2.5, n_users)[user] + rng.normal(0, 2.5, user.size)), 0, 23)
    last = within == n_orders[user] - 1
    eval_set = np.where(last, np.where(rng.random(n_users) < m.train_share, "train", "test")[user], "prior")
    return pd.DataFrame({
        "order_id": rng.permutation(user.size) + 1, "user_id": user + 1, "eval_set": eval_set,
        "order_number": within + 1, "order_dow": dow, "order_hour_of_day": hour.astype(np.int64),
        "days_since_prior_order": np.where(within == 0, -1, gap),  # -1: empty in the file
        "tau": within / np.maximum(n_orders[user] - 1, 1),  # position in the user's history, 0..1
    })


def _staples(rng, n_users: int, popularity: np.ndarray, m: Shoppers) -> dict[str, np.ndarray]:
    """Per-user staple sets (sorted by user) with weights and active windows in history time."""
    wanted = np.maximum(2, rng.poisson(rng.gamma(2.0, m.staple_mean / 2, n_users)))
    user = np.repeat(np.arange(n_users), wanted)
    focus = popularity ** m.staple_focus
    product = rng.choice(popularity.size, size=user.size, p=focus / focus.sum())
    keep = _first_of_key(user * popularity.size + product)  # a user's staples are distinct
    user, product = user[keep], product[keep]
    seasonal = rng.random(user.size) < m.seasonal
    begin = np.where(seasonal, rng.uniform(-0.7, 0.9, user.size), -np.inf)
    end = np.where(seasonal, begin + rng.uniform(0.3, 1.0, user.size), np.inf)
    weight = rng.gamma(0.7, 1.0, user.size)
    cum = np.cumsum(weight)
    last = np.cumsum(np.bincount(user, minlength=n_users)) - 1  # every user keeps >= 1 staple
    first = np.concatenate([[0], last[:-1] + 1])
    before = cum[first] - weight[first]
    return {"product": product, "begin": begin, "end": end, "cum": cum, "last": last,
            "before": before, "total": cum[last] - before}


def _draw_staples(rng, st: dict, user: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """A staple (index into st) per draw, active at `tau`; -1 where three tries found none active."""
    picked = np.full(user.size, -1)
    todo = np.arange(user.size)
    for _ in range(3):
        u = user[todo]
        target = st["before"][u] + rng.random(todo.size) * st["total"][u]
        idx = np.minimum(np.searchsorted(st["cum"], target, side="right"), st["last"][u])
        active = (st["begin"][idx] <= tau[todo]) & (tau[todo] <= st["end"][idx])
        picked[todo[active]] = idx[active]
        todo = todo[~active]
    return picked


def _lines(rng, orders: pd.DataFrame, n_products: int, mate, m: Shoppers) -> pd.DataFrame:
    """Order lines of every order (test orders included; the caller drops them)."""
    n_users = int(orders["user_id"].max())
    user_of_order = orders["user_id"].to_numpy() - 1
    rank = rng.permutation(n_products)
    popularity = 1.0 / (rank + 3.0) ** m.zipf
    popularity /= popularity.sum()
    st = _staples(rng, n_users, popularity, m)

    user_mean = 1 + rng.gamma(4.0, (m.mean_basket - 1) / 4, n_users)
    size = np.clip(1 + rng.poisson(rng.gamma(3.0, 1 / 3, user_of_order.size) * (user_mean[user_of_order] - 1)), 1, 50)
    draw_order = np.repeat(np.arange(size.size), size)
    _, draw_pos = _segments(size)
    user = user_of_order[draw_order]
    tau = orders["tau"].to_numpy()[draw_order]

    share = rng.beta(*m.staple_share, n_users)
    product = np.full(draw_order.size, -1)
    is_staple = rng.random(draw_order.size) < share[user]
    staple = _draw_staples(rng, st, user[is_staple], tau[is_staple])
    product[np.flatnonzero(is_staple)[staple >= 0]] = st["product"][staple[staple >= 0]]
    explore = product < 0
    product[explore] = rng.choice(n_products, size=int(explore.sum()), p=popularity)

    pulled = np.flatnonzero((draw_pos > 0) & (rng.random(draw_order.size) < m.bundle_pull))
    product[pulled] = mate(product[pulled - 1])  # bundle-mates of the (undisturbed) item before

    keep = _first_of_key(draw_order * n_products + product)  # a product once per order
    order_idx, product = draw_order[keep], product[keep]
    _, cart = _segments(np.bincount(order_idx, minlength=size.size))
    # Orders are sorted by user and order number, so the first line of (user, product) is the first purchase.
    reordered = ~_first_of_key(user_of_order[order_idx].astype(np.int64) * n_products + product)
    return pd.DataFrame({"order_idx": order_idx, "product_id": product + 1, "add_to_cart_order": cart + 1,
                         "reordered": reordered.astype(np.int64)})


def _write_plain(df: pd.DataFrame, path: Path) -> None:
    """CSV without quotes (the real files quote nothing outside product names)."""
    options = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
    pacsv.write_csv(pa.Table.from_pandas(df, preserve_index=False), path, options)


@register_generator("instacart")
def generate(out: Path, seed: int, scale: int, model: Shoppers = Shoppers()) -> dict:
    rng = np.random.default_rng(seed)
    n_products = min(MAX_PRODUCTS, 500 + 2 * scale)
    products, aisles = _catalogue(rng, n_products)
    mate = _bundle_mates(rng, products["aisle_id"].to_numpy() - 1, model.bundle_size)
    orders = _orders(rng, scale, model)
    lines = _lines(rng, orders, n_products, mate, model)

    written = orders.assign(order_hour_of_day=HOURS[orders["order_hour_of_day"]],
                            days_since_prior_order=DAY_GAPS[orders["days_since_prior_order"] + 1])
    _write_plain(written.drop(columns="tau"), out / "orders.csv")
    line_order_id = orders["order_id"].to_numpy()[lines["order_idx"]]
    line_set = orders["eval_set"].to_numpy()[lines["order_idx"]]
    counts = {}
    for part in ("prior", "train"):
        rows = np.flatnonzero(line_set == part)
        rows = rows[np.argsort(line_order_id[rows], kind="stable")]  # lines stay in cart order inside an order
        table = lines.iloc[rows].drop(columns="order_idx")
        table.insert(0, "order_id", line_order_id[rows])
        _write_plain(table, out / f"order_products__{part}.csv")
        counts[f"{part}_lines"] = len(table)

    csv = {"index": False, "lineterminator": "\n"}
    products.to_csv(out / "products.csv", **csv)
    aisles.to_csv(out / "aisles.csv", **csv)
    pd.DataFrame({"department_id": np.arange(1, len(DEPARTMENTS) + 1), "department": DEPARTMENTS}).to_csv(
        out / "departments.csv", **csv)
    # Kaggle's sample submission predicts the same two best sellers for every test order.
    best = np.argsort(-np.bincount(lines["product_id"]), kind="stable")[:2]
    test_ids = np.sort(orders.loc[orders["eval_set"] == "test", "order_id"].to_numpy())
    pd.DataFrame({"order_id": test_ids, "products": " ".join(map(str, best))}).to_csv(
        out / "sample_submission.csv", **csv)
    return {"users": scale, "orders": len(orders), **counts, "products": n_products}
