from setuptools import find_packages, setup

setup(
    name='agvm_mm',
    version='0.1.0',
    description='AGVM (Adaptive Gradient Variance Modulator) for mmengine, '
    'mmdet 3.x and mmsegmentation 1.x',
    packages=find_packages(include=['agvm_mm', 'agvm_mm.*']),
    python_requires='>=3.8',
    install_requires=['mmengine>=0.10,<1.0'],
)
